/**
 * The API's OpenAPI 3.1 description, served at /api/openapi.json. The methods' parameters are
 * generated from their declaration (src/recon/methods.ts), the one that checks them.
 */
import { z } from "zod";
import { METHODS, paramsSchema } from "../src/recon/methods.js";
import { MASK_KINDS } from "../operators/masks.js";
import { ACQUISITION_DEFAULTS } from "../src/recon/acquisition.js";
import { PAGE_LIMIT } from "./paging.js";

const id = { type: "string", format: "uuid" };
const error = {
  description: "error",
  content: {
    "application/json": {
      schema: {
        type: "object",
        properties: {
          error: {
            type: "object",
            required: ["code", "message"],
            properties: { code: { type: "string" }, message: { type: "string" }, field: { type: "string" } },
          },
        },
      },
    },
  },
};
const json = (schema: object, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
const path = (name: string, schema: object = id) => ({ name, in: "path", required: true, schema });
const format = {
  name: "format",
  in: "query",
  schema: { type: "string", enum: ["int16", "float32"], default: "int16" },
  description: "int16 with slope/intercept (real = stored x slope + intercept) or float32 values",
};

const slicePixels = {
  type: "object",
  required: ["rows", "cols", "dtype", "slope", "intercept", "window", "pixels"],
  properties: {
    rows: { type: "integer" },
    cols: { type: "integer" },
    dtype: { type: "string", enum: ["int16", "float32"] },
    slope: { type: "number" },
    intercept: { type: "number" },
    min: { type: "number" },
    max: { type: "number" },
    window: { type: "object", properties: { center: { type: "number" }, width: { type: "number" } } },
    units: { type: "string" },
    spacing: { type: "array", items: { type: "number" } },
    pixels: { type: "string", contentEncoding: "base64", description: "little-endian, row-major" },
  },
};

const series = {
  type: "object",
  properties: {
    id,
    description: { type: "string" },
    modality: { type: "string", enum: ["MR", "CT", "OT"] },
    units: { type: "string", enum: ["HU", "arbitrary"] },
    rows: { type: "integer" },
    cols: { type: "integer" },
    slices: { type: "integer" },
    spacing: { type: "array", items: { type: "number" } },
    window: { type: "object", properties: { center: { type: "number" }, width: { type: "number" } } },
  },
};
const study = {
  type: "object",
  properties: {
    id,
    created: { type: "string", format: "date-time" },
    source: { type: "string", enum: ["dicom", "nifti", "demo"] },
    files: { type: "integer" },
    series: { type: "array", items: series },
  },
};

const jobSpec = {
  type: "object",
  required: ["study", "methods"],
  additionalProperties: false,
  properties: {
    study: id,
    series: { ...id, description: "required when the study has several series" },
    slices: {
      type: "array",
      items: { type: "integer" },
      minItems: 2,
      maxItems: 2,
      description: "[start, end), zero-based",
    },
    modality: {
      type: "string",
      enum: ["mri", "ct"],
      description: "default: from the series (CT -> ct, else mri)",
    },
    mri: {
      type: "object",
      additionalProperties: false,
      properties: {
        acceleration: { type: "number", minimum: 1, maximum: 64, default: ACQUISITION_DEFAULTS.acceleration },
        centerFraction: {
          type: "number",
          minimum: 0,
          maximum: 1,
          default: ACQUISITION_DEFAULTS.centerFraction,
        },
        mask: { type: "string", enum: [...MASK_KINDS], default: ACQUISITION_DEFAULTS.mask },
        seed: { type: "integer", minimum: 0, maximum: 2 ** 31 - 1, default: 0 },
        noiseSigma: { type: "number", default: 0 },
      },
    },
    ct: {
      type: "object",
      additionalProperties: false,
      properties: {
        views: { type: "integer", minimum: 1, maximum: 4096, default: ACQUISITION_DEFAULTS.views },
        detectors: { type: "integer", description: "default ceil(sqrt(2) N)" },
        noise: {
          oneOf: [
            { type: "object", properties: { kind: { const: "none" } } },
            { type: "object", properties: { kind: { const: "gaussian" }, sigma: { type: "number" } } },
            { type: "object", properties: { kind: { const: "poisson" }, I0: { type: "number" } } },
          ],
        },
      },
    },
    methods: {
      type: "array",
      minItems: 1,
      maxItems: 16,
      items: { oneOf: METHODS.map(methodSchema) },
    },
    model: { type: "string", description: "a model name from GET /api/models (default: the shipped prior)" },
    seed: {
      type: "integer",
      minimum: 0,
      maximum: 2 ** 31 - 1,
      default: 0,
      description: "seed of the measurement noise",
    },
  },
};

/** One method of a job: its name and its parameters (each optional; the defaults are given). */
function methodSchema(m: (typeof METHODS)[number]) {
  const { $schema, ...params } = z.toJSONSchema(paramsSchema(m, true), { io: "input" });
  void $schema;
  const tuned = Object.entries(m.modalityDefaults ?? {}).map(
    ([modality, p]) =>
      `; ${modality.toUpperCase()} defaults: ${Object.entries(p)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
  );
  return {
    type: "object",
    required: ["name"],
    additionalProperties: false,
    description: `${m.summary} (${m.modalities.join(", ")})${tuned.join("")}`,
    properties: { name: { const: m.name }, params },
  };
}

const pageParameters = [
  {
    name: "limit",
    in: "query",
    description: `records per page (default ${PAGE_LIMIT.default})`,
    schema: { type: "integer", minimum: 1, maximum: PAGE_LIMIT.max, default: PAGE_LIMIT.default },
  },
  {
    name: "offset",
    in: "query",
    description: "the newest records to skip (0: the page ends with the newest)",
    schema: { type: "integer", minimum: 0, default: 0 },
  },
];

const pageFields = {
  total: { type: "integer", description: "records in all pages" },
  offset: { type: "integer" },
  limit: { type: "integer" },
};

const job = {
  type: "object",
  properties: {
    id,
    state: { type: "string", enum: ["queued", "running", "done", "failed", "cancelled"] },
    progress: { type: "number", description: "0..1 over all methods and slices" },
    perMethod: { type: "object", description: "per method: {done, total, current?: {slice, done, total}}" },
    seconds: { type: "object" },
    metrics: { type: "object" },
    error: {
      type: "object",
      description:
        "why it failed or was cancelled: {code, message}; codes include out_of_memory and worker_died (its worker process died), interrupted (the server died under it twice) and study_deleted",
    },
  },
};

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "scorerecon API",
    version: "0.1.0",
    description:
      "Upload studies, run reconstruction jobs (classical and score-based), follow their progress and fetch results. " +
      "When the server runs with SCORERECON_TOKEN, every /api route needs `Authorization: Bearer <token>`.",
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: { SlicePixels: slicePixels, Study: study, Series: series, JobSpec: jobSpec, Job: job },
  },
  security: [{ bearer: [] }],
  paths: {
    "/api/studies": {
      post: {
        summary: "Upload a study: DICOM files (or a .zip of them) or one NIfTI",
        requestBody: {
          content: {
            "multipart/form-data": {
              schema: {
                type: "object",
                properties: {
                  files: { type: "array", items: { type: "string", format: "binary" } },
                  modality: {
                    type: "string",
                    enum: ["MR", "CT"],
                    description: "for NIfTI, which records none",
                  },
                },
              },
            },
          },
        },
        responses: { 201: json(study, "the stored study"), 400: error, 413: error },
      },
      get: {
        summary:
          "List studies, a page at a time: the newest `limit` after skipping the `offset` newest, oldest first",
        parameters: pageParameters,
        responses: {
          200: json({
            type: "object",
            properties: { studies: { type: "array", items: study }, ...pageFields },
          }),
          400: error,
        },
      },
    },
    "/api/studies/{id}": {
      parameters: [path("id")],
      get: { summary: "One study and its series", responses: { 200: json(study), 404: error } },
      delete: {
        summary:
          "Delete a study: its queued and running jobs are cancelled first (error study_deleted), and the results of all its jobs are removed",
        responses: { 204: { description: "deleted" }, 404: error },
      },
    },
    "/api/studies/{id}/series/{sid}/slices/{n}": {
      parameters: [path("id"), path("sid"), path("n", { type: "integer" }), format],
      get: { summary: "One slice's pixels", responses: { 200: json(slicePixels), 404: error } },
    },
    "/api/jobs": {
      post: {
        summary: "Start a reconstruction job",
        requestBody: { content: { "application/json": { schema: jobSpec } } },
        responses: { 201: json(job, "the queued job"), 400: error, 404: error, 415: error, 429: error },
      },
      get: {
        summary:
          "List jobs, a page at a time: the newest `limit` after skipping the `offset` newest, oldest first",
        parameters: pageParameters,
        responses: {
          200: json({ type: "object", properties: { jobs: { type: "array", items: job }, ...pageFields } }),
          400: error,
        },
      },
    },
    "/api/jobs/{id}": {
      parameters: [path("id")],
      get: {
        summary: "A job: state, progress per method and slice, timings, metrics so far",
        responses: { 200: json(job), 404: error },
      },
      delete: {
        summary: "Cancel a job",
        responses: { 202: json({ type: "object" }), 404: error, 409: error },
      },
    },
    "/api/jobs/{id}/events": {
      parameters: [path("id")],
      get: {
        summary: "Server-Sent Events: snapshot, then progress, slice and state events until the job ends",
        responses: {
          200: { description: "text/event-stream", content: { "text/event-stream": {} } },
          404: error,
        },
      },
    },
    "/api/jobs/{id}/metrics": {
      parameters: [path("id")],
      get: {
        summary: "PSNR, SSIM, NMSE and seconds per slice and their means, per method",
        responses: { 200: json({ type: "object" }), 404: error },
      },
    },
    "/api/jobs/{id}/results/{method}/slices/{n}": {
      parameters: [path("id"), path("method", { type: "string" }), path("n", { type: "integer" }), format],
      get: {
        summary: "One finished slice of a method's result (method-std: the uncertainty map)",
        responses: { 200: json(slicePixels), 404: error },
      },
    },
    "/api/jobs/{id}/results/{method}/error/slices/{n}": {
      parameters: [path("id"), path("method", { type: "string" }), path("n", { type: "integer" }), format],
      get: {
        summary: "Signed difference result - ground truth of one slice",
        responses: { 200: json(slicePixels), 404: error },
      },
    },
    "/api/jobs/{id}/results/{method}/download": {
      parameters: [
        path("id"),
        path("method", { type: "string" }),
        {
          name: "format",
          in: "query",
          schema: { type: "string", enum: ["nifti", "dicom"], default: "nifti" },
        },
      ],
      get: {
        summary: "A finished method's volume as NIfTI (.nii.gz) or a derived DICOM series (.zip)",
        responses: {
          200: { description: "the file", content: { "application/gzip": {}, "application/zip": {} } },
          404: error,
        },
      },
    },
    "/api/models": {
      get: {
        summary: "Shipped and user-trained priors with their prior.json",
        responses: { 200: json({ type: "object" }) },
      },
    },
    "/api/openapi.json": { get: { summary: "This document", responses: { 200: json({ type: "object" }) } } },
    "/healthz": { get: { security: [], summary: "Liveness", responses: { 200: json({ type: "object" }) } } },
    "/readyz": {
      get: {
        security: [],
        summary: "Readiness (503 until interrupted jobs are re-queued)",
        responses: { 200: json({ type: "object" }), 503: json({ type: "object" }) },
      },
    },
  },
};

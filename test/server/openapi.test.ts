/* eslint-disable @typescript-eslint/no-explicit-any -- Express's router internals and JSON bodies */
/**
 * The API document against the app: every route the app registers is documented and every
 * documented operation is a route; answers have the shapes the document gives; the job form's
 * defaults come from the job schema.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { generatePhantom } from "../../phantoms/index.js";
import { MASK_KINDS } from "../../operators/masks.js";
import { makeVolume } from "../../src/image/volume.js";
import { encodeNifti1 } from "../../src/io/nifti.js";
import { ACQUISITION_DEFAULTS } from "../../src/recon/acquisition.js";
import { createServer, type ScoreReconServer } from "../../server/app.js";
import { SlicePixelsSchema } from "../../server/pixels.js";
import { JobPage, JobView, MetricsView, StudyPage, StudyView } from "../../server/views.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-openapi-"));
let s: ScoreReconServer;
let study: { id: string; series: { id: string }[] };
let doc: any;

const N = 32;
const phantom = (slices: number) => {
  const data = new Float32Array(slices * N * N);
  for (let k = 0; k < slices; k++) data.set(generatePhantom("brain", N, 900 + k).data, k * N * N);
  return makeVolume(slices, N, N, data, { modality: "MR", spacing: [1, 1, 2] });
};

beforeAll(async () => {
  s = createServer({ dataDir: join(root, "data"), workers: 1 });
  await s.ready;
  study = await s.storage.addStudy("demo", 0, [phantom(2)], ["phantom"]);
  doc = (await request(s.app).get("/api/openapi.json")).body;
});

afterAll(async () => {
  await s.close();
});

/** `METHOD /path/{param}` of every route in the app's router stack, mounted routers included. */
function registeredRoutes(app: any): string[] {
  const out: string[] = [];
  const walk = (stack: any[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route)
        for (const method of Object.keys(layer.route.methods))
          out.push(`${method.toUpperCase()} ${prefix}${layer.route.path}`.replace(/:(\w+)/g, "{$1}"));
      else if (Array.isArray(layer.handle?.stack)) walk(layer.handle.stack, prefix + (layer.rawPath ?? ""));
    }
  };
  walk(app.router.stack, "");
  return out.sort();
}

function documentedOperations(d: any): string[] {
  return Object.entries(d.paths)
    .flatMap(([path, item]: [string, any]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

/** The body has the schema's shape and no top-level field the document leaves out. */
function expectShape(schema: z.ZodObject, body: any): void {
  const parsed = schema.safeParse(body);
  expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  for (const key of Object.keys(body)) expect(Object.keys(schema.shape), key).toContain(key);
}

describe("the OpenAPI document", () => {
  it("lists every route the app registers, and nothing else", () => {
    const routes = registeredRoutes(s.app);
    expect(routes).toContain("GET /api/studies/{id}/series/{sid}/slices/{n}");
    expect(routes).toContain("GET /healthz");
    expect(routes.length).toBeGreaterThanOrEqual(18);
    expect(documentedOperations(doc)).toEqual(routes);
  });

  it("takes request bodies and query parameters from the schemas that check them", () => {
    const spec = doc.components.schemas.JobSpec;
    expect(spec.properties.mri.properties.acceleration).toMatchObject({
      type: "number",
      minimum: 1,
      maximum: 64,
      default: ACQUISITION_DEFAULTS.acceleration,
    });
    expect(spec.properties.series.description).toMatch(/several series/);
    expect(doc.paths["/api/jobs"].post.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/JobSpec",
    });
    const masks = doc.paths["/api/masks"].get.parameters;
    expect(masks.find((p: any) => p.name === "kind")).toMatchObject({
      in: "query",
      required: false,
      schema: { enum: [...MASK_KINDS], default: ACQUISITION_DEFAULTS.mask },
    });
    expect(masks.find((p: any) => p.name === "rows")).toMatchObject({ required: true });
    const upload = doc.paths["/api/studies"].post.requestBody.content["multipart/form-data"].schema;
    expect(upload.properties.modality.enum).toEqual(["MR", "CT"]);
    expect(doc.paths["/healthz"].get.security).toEqual([]);
    expect(doc.paths["/api/jobs/{id}"].get.security).toBeUndefined();
  });

  it("answers have the shapes the document gives (a created job is shown as GET gives it)", async () => {
    const created = await request(s.app)
      .post("/api/jobs")
      .send({ study: study.id, slices: [0, 1], methods: [{ name: "zero-filled" }] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expectShape(JobView, created.body);
    expect(created.body.plan).toBeUndefined();
    for (;;) {
      const j = await request(s.app).get(`/api/jobs/${created.body.id}`);
      if (["done", "failed"].includes(j.body.state)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const id = created.body.id;
    const job = (await request(s.app).get(`/api/jobs/${id}`)).body;
    expect(job.state).toBe("done");
    expectShape(JobView, job);
    expectShape(JobPage, (await request(s.app).get("/api/jobs")).body);
    expectShape(MetricsView, (await request(s.app).get(`/api/jobs/${id}/metrics`)).body);
    expectShape(StudyPage, (await request(s.app).get("/api/studies")).body);
    expectShape(StudyView, (await request(s.app).get(`/api/studies/${study.id}`)).body);
    const slice = await request(s.app).get(`/api/jobs/${id}/results/zero-filled/slices/0`);
    expectShape(SlicePixelsSchema, slice.body);
  }, 120_000);

  it("a bad format is a 400 naming it, with the values it takes", async () => {
    const r = await request(s.app).get(
      `/api/studies/${study.id}/series/${study.series[0].id}/slices/0?format=png`,
    );
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      code: "bad_request",
      field: "format",
      message: "format: must be int16 or float32, got 'png'",
    });
  });
});

describe("the job form's defaults", () => {
  it("GET /api/defaults gives the job spec's acquisition fields with their defaults and ranges", async () => {
    const r = await request(s.app).get("/api/defaults");
    expect(r.status).toBe(200);
    expect(r.body.mri.acceleration).toMatchObject({
      type: "number",
      default: ACQUISITION_DEFAULTS.acceleration,
      minimum: 1,
      maximum: 64,
    });
    expect(r.body.mri.centerFraction.default).toBe(ACQUISITION_DEFAULTS.centerFraction);
    expect(r.body.mri.mask).toMatchObject({ enum: [...MASK_KINDS], default: ACQUISITION_DEFAULTS.mask });
    expect(r.body.mri.seed).toMatchObject({ type: "integer", default: 0, minimum: 0 });
    expect(r.body.ct.views).toMatchObject({
      type: "integer",
      default: ACQUISITION_DEFAULTS.views,
      minimum: 1,
    });
  });
});

describe("uploads", () => {
  it("an unknown modality is a 400 naming it, and nothing of the upload is kept", async () => {
    const before = (await request(s.app).get("/api/studies")).body.total;
    const r = await request(s.app)
      .post("/api/studies")
      .field("modality", "XR")
      .attach("files", Buffer.from(encodeNifti1(phantom(1), true)), "v.nii.gz");
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ field: "modality" });
    expect(r.body.error.message).toMatch(/^modality: /);
    expect(readdirSync(s.storage.uploadsDir)).toEqual([]);
    expect((await request(s.app).get("/api/studies")).body.total).toBe(before);
  });
});

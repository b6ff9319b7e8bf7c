/**
 * What clients need besides the resources: the job form's acquisition fields with their defaults
 * and ranges (from the job schema itself), the sampling mask a job would use, and the health checks.
 */
import { z } from "zod";
import { MASK_KINDS, realisedAcceleration, samplingMask } from "../../operators/masks.js";
import { ACQUISITION_DEFAULTS, ACQUISITION_RANGES } from "../../src/recon/acquisition.js";
import { named } from "../api-schemas.js";
import { JobSpecSchema } from "../spec.js";
import { route } from "./route.js";

const MaskQuery = z.object({
  rows: z.coerce.number().int().min(8).max(1024),
  cols: z.coerce.number().int().min(8).max(1024),
  kind: z.enum(MASK_KINDS).default(ACQUISITION_DEFAULTS.mask),
  acceleration: z.coerce
    .number()
    .min(ACQUISITION_RANGES.acceleration.min)
    .max(ACQUISITION_RANGES.acceleration.max)
    .default(ACQUISITION_DEFAULTS.acceleration),
  centerFraction: z.coerce.number().min(0).max(1).default(ACQUISITION_DEFAULTS.centerFraction),
  seed: z.coerce.number().int().min(ACQUISITION_RANGES.seed.min).max(ACQUISITION_RANGES.seed.max).default(0),
});

const MaskView = named(
  "Mask",
  z.object({
    rows: z.number().int(),
    cols: z.number().int(),
    acceleration: z.number().meta({ description: "realised: all lines over the sampled ones" }),
    mask: z.string().meta({ contentEncoding: "base64", description: "rows x cols bytes, 1: sampled" }),
  }),
);

/** A field's JSON Schema: type, range, choices and default. */
const Field = z
  .object({
    type: z.string().optional(),
    default: z.unknown().optional(),
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    enum: z.array(z.string()).optional(),
  })
  .loose();
const AcquisitionFields = named(
  "AcquisitionFields",
  z
    .object({ mri: z.record(z.string(), Field), ct: z.record(z.string(), Field) })
    .meta({ description: "the `mri` and `ct` fields of a job spec, as JobSpec declares them" }),
);

/** The fields of one of the job spec's acquisition objects, as the API document gives them. */
function fieldsOf(schema: z.ZodType): Record<string, z.infer<typeof Field>> {
  const json = z.toJSONSchema(schema, { io: "input" });
  return (json.properties ?? {}) as Record<string, z.infer<typeof Field>>;
}

export function metaRoutes(isReady: () => boolean) {
  const fields = {
    mri: fieldsOf(JobSpecSchema.shape.mri.unwrap()),
    ct: fieldsOf(JobSpecSchema.shape.ct.unwrap()),
  } satisfies z.input<typeof AcquisitionFields>;
  return [
    route({
      method: "get",
      path: "/api/defaults",
      summary: "A job's acquisition fields (mri, ct) with their defaults and ranges: the job form's start",
      ok: { 200: AcquisitionFields },
      handle: (_req, res) => void res.json(fields),
    }),
    route({
      method: "get",
      path: "/api/masks",
      summary: "The sampling mask an MRI job with these settings would use (the job form's picture)",
      query: MaskQuery,
      ok: { 200: MaskView },
      errors: [400],
      handle: (_req, res, { rows, cols, kind, acceleration, centerFraction, seed }) => {
        const mask = samplingMask(rows, cols, { kind, acceleration, centerFraction, seed });
        res.json({
          rows,
          cols,
          acceleration: realisedAcceleration(mask),
          mask: Buffer.from(mask).toString("base64"),
        } satisfies z.input<typeof MaskView>);
      },
    }),
    route({
      method: "get",
      path: "/healthz",
      summary: "Liveness",
      ok: { 200: z.object({ ok: z.literal(true) }) },
      handle: (_req, res) => void res.json({ ok: true }),
    }),
    route({
      method: "get",
      path: "/readyz",
      summary: "Readiness: 503 until the jobs left by a previous run are re-queued",
      ok: { 200: z.object({ ready: z.boolean() }), 503: z.object({ ready: z.boolean() }) },
      handle: (_req, res) => void res.status(isReady() ? 200 : 503).json({ ready: isReady() }),
    }),
  ];
}

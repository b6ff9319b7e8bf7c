/**
 * The job specification of `POST /api/jobs`, validated with zod. Every error names its field
 * (`methods[1].params.steps`, `mri.acceleration`, ...). Models are chosen by name from
 * `GET /api/models`, never by path.
 */
import { z } from "zod";
import { UserError } from "../src/errors.js";
import {
  ACQUISITION_DEFAULTS,
  ACQUISITION_RANGES as R,
  defaultDetectors,
  type Acquisition,
  type Modality,
} from "../src/recon/acquisition.js";
import { checkListedOnce, findMethod, methodRequest, type MethodRequest } from "../src/recon/methods.js";
import { checkPrior, defaultPriorPath } from "../src/recon/score-methods.js";
import { MASK_KINDS } from "../operators/masks.js";
import type { StudyRecord } from "./study-record.js";

/** zod numbers in a range (the ranges are declared beside what they bound, for CLI and API alike). */
export const int = (min: number, max: number) => z.number().int().min(min).max(max);
const range = (r: { min: number; max: number }) => z.number().min(r.min).max(r.max);
export const intRange = (r: { min: number; max: number }) => int(r.min, r.max);

export const JobSpecSchema = z
  .object({
    study: z.string(),
    series: z.string().optional(),
    /** Zero-based, end exclusive; default: all slices. */
    slices: z.tuple([int(0, 100_000), int(1, 100_000)]).optional(),
    modality: z.enum(["mri", "ct"]).optional(),
    mri: z
      .object({
        acceleration: range(R.acceleration).default(ACQUISITION_DEFAULTS.acceleration),
        centerFraction: z.number().min(0).max(1).default(ACQUISITION_DEFAULTS.centerFraction),
        mask: z.enum(MASK_KINDS).default(ACQUISITION_DEFAULTS.mask),
        seed: intRange(R.seed).default(0),
        noiseSigma: range(R.noiseSigma).default(0),
      })
      .strict()
      .optional(),
    ct: z
      .object({
        views: intRange(R.views).default(ACQUISITION_DEFAULTS.views),
        detectors: intRange(R.detectors).optional(),
        noise: z
          .discriminatedUnion("kind", [
            z.object({ kind: z.literal("none") }).strict(),
            z.object({ kind: z.literal("gaussian"), sigma: range(R.noiseSigma) }).strict(),
            z.object({ kind: z.literal("poisson"), I0: range(R.I0) }).strict(),
          ])
          .default({ kind: "none" }),
      })
      .strict()
      .optional(),
    methods: z
      .array(
        z
          .object({
            name: z.string(),
            params: z.record(z.string(), z.union([z.number(), z.string()])).default({}),
          })
          .strict(),
      )
      .min(1)
      .max(16),
    /** A model name from GET /api/models, for the score-based methods. */
    model: z.string().optional(),
    /** Seed of the measurement noise. */
    seed: intRange(R.seed).default(0),
  })
  .strict();

export type JobSpec = z.infer<typeof JobSpecSchema>;

/** What a job runs: the spec resolved against its study and the model list. */
export interface ResolvedJob {
  spec: JobSpec;
  seriesId: string;
  modality: Modality;
  slices: [number, number];
  acquisition: Acquisition;
  methods: MethodRequest[];
}

export const fieldOf = (path: PropertyKey[]) =>
  path.reduce<string>(
    (s, p) => (typeof p === "number" ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)),
    "",
  );

/**
 * Parses and checks a job spec; the first problem becomes a UserError naming its field, its
 * message beginning with the field. `modelDir`: the folder of a model by its API name.
 */
export function resolveJobSpec(
  body: unknown,
  study: (id: string) => StudyRecord | undefined,
  modelDir: (name: string) => string | undefined,
): ResolvedJob {
  try {
    return resolve(body, study, modelDir);
  } catch (e) {
    if (!(e instanceof UserError) || !e.field || e.message.startsWith(`${e.field}: `)) throw e;
    throw new UserError(`${e.field}: ${e.message}`, e.code, e.field);
  }
}

function resolve(
  body: unknown,
  study: (id: string) => StudyRecord | undefined,
  modelDir: (name: string) => string | undefined,
): ResolvedJob {
  const parsed = JobSpecSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = fieldOf(issue.path) || "body";
    throw new UserError(`${field}: ${issue.message}`, "bad_job", field);
  }
  const spec = parsed.data;
  const s = study(spec.study);
  if (!s) throw new UserError(`study: no study ${spec.study}`, "not_found", "study");
  if (!spec.series && s.series.length > 1)
    throw new UserError(`series: the study has ${s.series.length} series; name one`, "bad_job", "series");
  const series = spec.series ? s.series.find((x) => x.id === spec.series) : s.series[0];
  if (!series) throw new UserError(`series: no series ${spec.series} in this study`, "not_found", "series");
  const modality: Modality = spec.modality ?? (series.modality === "CT" ? "ct" : "mri");
  const says = series.modality === "CT" ? "ct" : series.modality === "MR" ? "mri" : undefined;
  if (says && says !== modality)
    throw new UserError(
      `modality: the series is ${series.modality} but the job asks for ${modality.toUpperCase()}; leave 'modality' out or give '${says}'`,
      "bad_job",
      "modality",
    );
  const [a, b] = spec.slices ?? [0, series.slices];
  if (a >= b || b > series.slices)
    throw new UserError(
      `slices: [${a}, ${b}] is outside the series' ${series.slices} slices`,
      "bad_job",
      "slices",
    );
  if (modality === "ct" && series.rows !== series.cols)
    throw new UserError(
      `modality: CT needs square slices, this series is ${series.rows}x${series.cols}`,
      "bad_job",
      "modality",
    );
  if ((modality === "mri" && spec.ct) || (modality === "ct" && spec.mri))
    throw new UserError(
      `${modality === "mri" ? "ct" : "mri"}: not for ${modality.toUpperCase()} jobs`,
      "bad_job",
      modality === "mri" ? "ct" : "mri",
    );
  // The prior, by its API name (the plan never holds a server path); "" is the shipped one.
  const model = spec.model ?? "";
  const dir = model ? modelDir(model) : defaultPriorPath(modality);
  if (!dir) throw new UserError(`model: no model named '${model}'`, "not_found", "model");
  const acquisition: Acquisition =
    modality === "mri"
      ? (() => {
          const m = spec.mri ?? ACQUISITION_DEFAULTS;
          return {
            modality,
            rows: series.rows,
            cols: series.cols,
            mask: {
              kind: m.mask,
              acceleration: m.acceleration,
              centerFraction: m.centerFraction,
              seed: m.seed,
            },
            noiseSigma: m.noiseSigma,
          };
        })()
      : {
          modality,
          size: series.rows,
          views: spec.ct?.views ?? ACQUISITION_DEFAULTS.views,
          detectors: spec.ct?.detectors ?? defaultDetectors(series.rows),
          noise: spec.ct?.noise ?? { kind: "none" },
        };
  checkListedOnce(
    spec.methods.map((m) => m.name),
    (i) => `methods[${i}]`,
    "bad_job",
  );
  const methods = spec.methods.map((m, i) => {
    if ("model" in m.params)
      throw new UserError(
        `methods[${i}].model: choose the prior with the job's 'model' field`,
        "bad_job",
        `methods[${i}].model`,
      );
    const r = methodRequest(m.name, m.params, acquisition, `methods[${i}]`, false, true);
    if (!findMethod(m.name).needsPrior) return r;
    checkPrior(dir, modality, "model");
    return { ...r, params: { ...r.params, model } };
  });
  return { spec, seriesId: series.id, modality, slices: [a, b], acquisition, methods };
}

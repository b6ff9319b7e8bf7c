/**
 * The reconstruction methods the pipeline can run, by name, with their parameters and defaults.
 * A method request is written `name` or `name:key=value:key=value` (e.g. `tv:lambda=0.003`).
 * Every method returns a real image in operator units (MRI: the magnitude).
 */
import { basename } from "node:path";
import { fbp, FBP_FILTERS, type FbpFilter, type ParallelBeamProjector } from "../../operators/ct.js";
import { magnitude } from "../../operators/complex.js";
import { finiteDifferences, stationaryHaar } from "../baselines/regularisers.js";
import { pdhg } from "../baselines/pdhg.js";
import { sirt } from "../baselines/sirt.js";
import { z } from "zod";
import { UserError } from "../errors.js";
import { describeAcquisition, type Acquisition, type ForwardModel, type Modality } from "./acquisition.js";
import { scoreReconstruct, type ScoreSampler } from "./score-methods.js";

export type ParamValue = number | string;
export type Params = Record<string, ParamValue>;

/**
 * One method parameter, declared once with its method: its type, the range a user could want,
 * its default and a line of help. This declaration checks `name:key=value` on the command line
 * and `methods[i].params` of a job (methodRequest), and makes the API's schema (paramsSchema).
 */
export type ParamSpec =
  | NumberSpec
  | ({ help: string } & (
      | { kind: "choice"; choices: readonly string[]; default: string }
      /** Free text; `api: false` keeps it off the job API (the prior folder: the API chooses priors by name). */
      | { kind: "string"; default: string; maxLength: number; api?: false }
    ));
export interface NumberSpec {
  kind: "integer" | "number";
  min: number;
  max: number;
  default: number;
  help: string;
}

export interface MethodContext {
  model: ForwardModel;
  y: Float32Array;
  rows: number;
  cols: number;
  /** The slice's index in its volume (score-based methods draw slice k's noise with seed + k). */
  slice: number;
  /** Where the caller chose the prior (`--model`, or a job's `model`): the words of prior errors. */
  priorField?: string;
  onIteration?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ReconMethod {
  name: string;
  modalities: readonly Modality[];
  /** One line for `--help` and docs/methods.md. */
  summary: string;
  /** Its parameters, by name (the order of `--help` and the API schema). */
  params: Readonly<Record<string, ParamSpec>>;
  /** Defaults that differ for one modality (tuned per modality), over the declared ones. */
  modalityDefaults?: Partial<Record<Modality, Params>>;
  /** Uses a trained prior (the inference engine must be started first: initEngine). */
  needsPrior?: boolean;
  /** The image, or for posterior sampling with samples > 1 the mean and the per-pixel std. */
  run(ctx: MethodContext, params: Params): Float32Array | { image: Float32Array; std: Float32Array };
}

export interface MethodRequest {
  name: string;
  params: Params;
}

const toImage = (ctx: MethodContext, x: Float32Array) => (ctx.model.op.input.complex ? magnitude(x) : x);
const isCt = (ctx: MethodContext) => ctx.model.acquisition.modality === "ct";
/** CT iterative methods start from the ramp FBP: PDHG and SIRT then need far fewer iterations. */
const ctStart = (ctx: MethodContext) =>
  isCt(ctx) ? fbp(ctx.y, ctx.model.op as ParallelBeamProjector, { filter: "ramp" }) : undefined;

const regularised =
  (transform: "tv" | "wavelet") =>
  (ctx: MethodContext, p: Params): Float32Array => {
    const complex = ctx.model.op.input.complex;
    const w =
      transform === "tv"
        ? finiteDifferences(ctx.rows, ctx.cols, complex)
        : stationaryHaar(ctx.rows, ctx.cols, complex, Number(p.levels));
    const x = pdhg(ctx.model.op, ctx.y, w, {
      lambda: Number(p.lambda),
      iterations: Number(p.iterations),
      init: ctStart(ctx),
      nonNegative: isCt(ctx),
      onIteration: ctx.onIteration,
      signal: ctx.signal,
    });
    return toImage(ctx, x);
  };

const int = (min: number, max: number, value: number, help: string): NumberSpec => ({
  kind: "integer",
  min,
  max,
  default: value,
  help,
});
const num = (min: number, max: number, value: number, help: string): NumberSpec => ({
  kind: "number",
  min,
  max,
  default: value,
  help,
});
const lambda = (value: number): NumberSpec => num(0, 1e3, value, "regularisation weight");
const iterations = (value: number, help = "iterations"): NumberSpec => int(1, 100_000, value, help);

const TV_PARAMS = { lambda: lambda(0.002), iterations: iterations(300) };

/** What every score-based method takes: sampler steps, samples, their seed and the prior. */
const SCORE_PARAMS = {
  steps: int(1, 2000, 75, "sampler steps (noise levels)"),
  samples: int(1, 64, 1, "posterior samples: their mean is the image, their spread the uncertainty map"),
  seed: int(0, 2 ** 31 - 1, 0, "seed of the sampler's noise (slice k draws with seed + k)"),
  model: {
    kind: "string",
    default: "",
    maxLength: 4096,
    api: false,
    help: "prior folder (default: the shipped prior of the modality; the API's job field `model` names one)",
  },
} satisfies Record<string, ParamSpec>;
const cg = (value: number): NumberSpec =>
  int(0, 100, value, "conjugate-gradient iterations of data consistency");

/**
 * Tuned on validation slices and phantoms (docs/tuning.md) for about 10 s per 256x256 slice on one
 * core. sigmaStart > 0 starts at that noise level from an estimate ("come closer, diffuse faster"):
 * start=tv from the TV reconstruction (tvLambda: the TV method's tuned lambda for the modality;
 * tvIterations its PDHG iterations), start=ls from the least-squares image A^+ y; sigmaStart 0
 * starts from the prior at sigma_max. Both modalities start from TV with 40 steps: MRI at sigma 1
 * with two posterior samples (averaged; their spread is the uncertainty map); CT at sigma 0.25 with
 * one sample and a TV start of 100 iterations (CT's data consistency costs most of a step: at 60
 * views two samples, or a 300-iteration start, go past 15 s a slice).
 */
const DDS_PARAMS = {
  ...SCORE_PARAMS,
  steps: { ...SCORE_PARAMS.steps, default: 40 },
  samples: { ...SCORE_PARAMS.samples, default: 2 },
  cg: cg(5),
  eta: num(0, 1, 1, "DDIM stochasticity (0: deterministic)"),
  sigmaStart: num(
    0,
    1e3,
    1,
    "start at this noise level from the start estimate (0: from the prior's sigma_max)",
  ),
  start: {
    kind: "choice",
    choices: ["tv", "ls"],
    default: "tv",
    help: "start estimate: TV or least squares",
  },
  tvLambda: num(0, 1e3, 0.005, "lambda of the TV start"),
  tvIterations: iterations(TV_PARAMS.iterations.default, "iterations of the TV start"),
} satisfies Record<string, ParamSpec>;
const DDS_CT_DEFAULTS: Params = { samples: 1, sigmaStart: 0.25, tvLambda: 0.001, tvIterations: 100 };

/** A score-based method: its sampler's parameters plus samples, seed and the prior (`model`). */
function scoreMethod(
  name: string,
  sampler: ScoreSampler,
  summary: string,
  params: Record<string, ParamSpec>,
  modalityDefaults?: ReconMethod["modalityDefaults"],
): ReconMethod {
  return {
    name,
    modalities: ["mri", "ct"],
    summary,
    params: { ...SCORE_PARAMS, ...params },
    ...(modalityDefaults ? { modalityDefaults } : {}),
    needsPrior: true,
    run: (ctx, p) => {
      if (p.start !== "tv") return scoreReconstruct(sampler, ctx, p);
      // The TV reconstruction (one step of the progress), made when the sampler starts from it.
      const total = Number(p.steps) + 1;
      const tvStart = () => {
        const x = regularised("tv")(
          { ...ctx, onIteration: undefined },
          { lambda: p.tvLambda, iterations: p.tvIterations },
        );
        ctx.onIteration?.(1, total);
        return x;
      };
      return scoreReconstruct(
        sampler,
        { ...ctx, onIteration: (done) => ctx.onIteration?.(done + 1, total) },
        p,
        tvStart,
      );
    },
  };
}

export const METHODS: readonly ReconMethod[] = [
  {
    name: "zero-filled",
    modalities: ["mri"],
    summary: "A^H y: inverse FFT of the k-space with unsampled lines zero (magnitude)",
    params: {},
    run: (ctx) => toImage(ctx, ctx.model.op.adjoint(ctx.y)),
  },
  {
    name: "fbp",
    modalities: ["ct"],
    summary: "filtered backprojection (filter=ramp|shepp-logan|cosine|hamming|hann)",
    params: { filter: { kind: "choice", choices: FBP_FILTERS, default: "ramp", help: "ramp filter window" } },
    run: (ctx, p) => fbp(ctx.y, ctx.model.op as ParallelBeamProjector, { filter: p.filter as FbpFilter }),
  },
  {
    name: "sirt",
    modalities: ["ct"],
    summary: "SIRT from the FBP, non-negative, fixed iteration count",
    params: { iterations: iterations(100) },
    run: (ctx, p) =>
      sirt(ctx.model.op, ctx.y, {
        iterations: Number(p.iterations),
        init: ctStart(ctx)?.map((v) => Math.max(0, v)),
        nonNegative: true,
        onIteration: ctx.onIteration,
        signal: ctx.signal,
      }),
  },
  {
    name: "tv",
    modalities: ["mri", "ct"],
    summary: "total-variation regularised least squares by PDHG (CS-TV for MRI)",
    params: TV_PARAMS,
    run: regularised("tv"),
  },
  {
    name: "wavelet",
    modalities: ["mri", "ct"],
    summary: "l1 stationary-Haar-wavelet regularised least squares by PDHG (CS-wavelet)",
    params: { ...TV_PARAMS, levels: int(1, 8, 4, "wavelet levels") },
    run: regularised("wavelet"),
  },
  scoreMethod(
    "score",
    "dds",
    "score-based posterior sampling with the shipped prior (the fast dds sampler, default settings)",
    DDS_PARAMS,
    { ct: DDS_CT_DEFAULTS },
  ),
  scoreMethod(
    "dds",
    "dds",
    "Decomposed Diffusion Sampler (Chung, Lee & Ye 2024): Tweedie denoise, CG data consistency, DDIM step",
    DDS_PARAMS,
    { ct: DDS_CT_DEFAULTS },
  ),
  scoreMethod("song", "song", "predictor-corrector posterior sampling of Song, Shen, Xing & Ermon 2022", {
    // The predictor's discretisation needs two noise levels at least.
    steps: { ...SCORE_PARAMS.steps, min: 2, default: 500 },
    lambda: num(0, 1, 1, "weight of the measured part's replacement (1: full replacement)"),
    snr: num(0, 1, 0.16, "signal-to-noise ratio of the Langevin corrector"),
    cg: cg(10),
  }),
  scoreMethod(
    "langevin",
    "langevin",
    "annealed Langevin dynamics with a data-consistency gradient (Jalal et al. 2021)",
    {
      steps: { ...SCORE_PARAMS.steps, default: 200 },
      stepsPerLevel: int(1, 100, 3, "Langevin steps per noise level"),
    },
  ),
];

export function findMethod(name: string, field = "method"): ReconMethod {
  const m = METHODS.find((x) => x.name === name);
  if (!m)
    throw new UserError(
      `unknown method '${name}' (known: ${METHODS.map((x) => x.name).join(", ")})`,
      "bad_method",
      field,
    );
  return m;
}

/** The declared defaults of a method, with those of the modality over them. */
export function methodDefaults(method: ReconMethod, modality: Modality): Params {
  const params: Params = {};
  for (const [key, spec] of Object.entries(method.params)) params[key] = spec.default;
  return { ...params, ...method.modalityDefaults?.[modality] };
}

/** A parameter as a zod schema: its type and range, from its declaration. */
export function paramSchema(spec: ParamSpec): z.ZodType<ParamValue> {
  const described = <T extends z.ZodType<ParamValue>>(t: T) =>
    t.meta({ description: spec.help, default: spec.default });
  if (spec.kind === "choice") return described(z.enum(spec.choices as [string, ...string[]]));
  if (spec.kind === "string") return described(z.string().max(spec.maxLength));
  const n = spec.kind === "integer" ? z.number().int() : z.number();
  return described(n.min(spec.min).max(spec.max));
}

/** A method's `params` object as a zod schema (every key optional, no others). `api`: without API-only-off keys. */
export function paramsSchema(method: ReconMethod, api = false) {
  const shape: Record<string, z.ZodOptional<z.ZodType<ParamValue>>> = {};
  for (const [key, spec] of Object.entries(method.params))
    if (!api || !(spec.kind === "string" && spec.api === false)) shape[key] = paramSchema(spec).optional();
  return z.object(shape).strict();
}

/** What a parameter takes, in words: "an integer in [1, 2000]", "one of tv, ls". */
function expected(spec: ParamSpec): string {
  if (spec.kind === "choice") return `one of ${spec.choices.join(", ")}`;
  if (spec.kind === "string") return `text of at most ${spec.maxLength} characters`;
  return `${spec.kind === "integer" ? "an integer" : "a number"} in [${spec.min}, ${spec.max}]`;
}

/** A parameter given as text (`key=value` on the command line) in its declared type. */
function fromText(spec: ParamSpec, text: string): ParamValue {
  if (spec.kind !== "integer" && spec.kind !== "number") return text;
  return text.trim() === "" ? NaN : Number(text);
}

/**
 * A checked method request: a known method for this modality, known parameter names, each value
 * of its declared type and range (ParamSpec). `field` names the place in the errors (the CLI's
 * `method`, or a job's `methods[1]`; a parameter is `<field>.<key>`). `text`: values are the
 * command line's text, converted to their declared type first; otherwise (a JSON job) they must
 * already have it. `api`: the parameters of the API's schema (paramsSchema), not the prior's folder.
 */
export function methodRequest(
  name: string,
  given: Record<string, string | number>,
  modality: Modality,
  field = "method",
  text = false,
  api = false,
): MethodRequest {
  const method = findMethod(name, field);
  // The parameters this caller may give (the API's leave out the prior's folder).
  const takes = Object.keys(paramsSchema(method, api).shape);
  if (!method.modalities.includes(modality))
    throw new UserError(
      `method '${name}' does not apply to ${modality.toUpperCase()} (it is for ${method.modalities.join(", ")})`,
      "bad_method",
      field,
    );
  const params = methodDefaults(method, modality);
  for (const [key, raw] of Object.entries(given)) {
    const spec = takes.includes(key) ? method.params[key] : undefined;
    if (!spec)
      throw new UserError(
        `method '${name}' has no parameter '${key}' (it takes: ${takes.join(", ") || "none"})`,
        "bad_method",
        field,
      );
    const value = text && typeof raw === "string" ? fromText(spec, raw) : raw;
    if (!paramSchema(spec).safeParse(value).success)
      throw new UserError(
        `method '${name}': ${key} must be ${expected(spec)}, got ${typeof raw === "string" ? `'${raw}'` : String(raw)}`,
        "bad_method",
        `${field}.${key}`,
      );
    params[key] = value;
  }
  return { name, params };
}

/**
 * What a derived series says of its making (DICOM DerivationDescription): the method, its
 * settings and the acquisition. A prior is named by its folder, never by its full path; empty
 * values are left out.
 */
export function describeDerivation(request: MethodRequest, acq: Acquisition): string {
  const settings = Object.entries(request.params)
    .filter(([, v]) => v !== "")
    .map(([k, v]) => `${k}=${k === "model" ? basename(String(v)) : v}`)
    .join(" ");
  return `scorerecon ${request.name}${settings ? ` (${settings})` : ""} from ${describeAcquisition(acq)}`;
}

/** Parses `tv:lambda=0.003,fbp` into requests, checking names, keys and values. */
export function parseMethods(list: string, modality: Modality): MethodRequest[] {
  const requests = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const [name, ...pairs] = item.split(":");
      const given: Record<string, string> = {};
      for (const pair of pairs) {
        const [key, value] = pair.split("=");
        if (value === undefined)
          throw new UserError(`method '${name}': '${pair}' must look like key=value`, "bad_method", "method");
        given[key] = value;
      }
      return methodRequest(name, given, modality, "method", true);
    });
  if (requests.length === 0) throw new UserError("no method given", "bad_method", "method");
  return requests;
}

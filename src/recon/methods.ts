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
import { UserError } from "../errors.js";
import { describeAcquisition, type Acquisition, type ForwardModel, type Modality } from "./acquisition.js";
import { scoreReconstruct, type ScoreSampler } from "./score-methods.js";

export type ParamValue = number | string;
export type Params = Record<string, ParamValue>;

export interface MethodContext {
  model: ForwardModel;
  y: Float32Array;
  rows: number;
  cols: number;
  /** The slice's index in its volume (score-based methods draw slice k's noise with seed + k). */
  slice: number;
  onIteration?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ReconMethod {
  name: string;
  modalities: readonly Modality[];
  /** One line for `--help` and docs/methods.md. */
  summary: string;
  defaults: Params;
  /** Defaults that differ for one modality (tuned per modality), over `defaults`. */
  modalityDefaults?: Partial<Record<Modality, Params>>;
  /** Uses a trained prior (TensorFlow.js must be initialised first). */
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

const TV_DEFAULTS: Params = { lambda: 0.002, iterations: 300 };

/**
 * Tuned on validation slices and phantoms (docs/tuning.md) within about a minute per 256x256 slice.
 * sigmaStart > 0 starts at that noise level from an estimate ("come closer, diffuse faster"):
 * start=tv from the TV reconstruction (tvLambda: the TV method's tuned lambda for the modality),
 * start=ls from the least-squares image A^+ y; sigmaStart 0 starts from the prior at sigma_max.
 * Both modalities: two posterior samples (averaged; their spread is the uncertainty map) started
 * from TV, at sigma 1 for MRI (75 steps) and 0.25 for CT (60 steps: 80 gain 0.6 dB but take CT 60
 * views over a minute a slice).
 */
const DDS_DEFAULTS: Params = {
  steps: 75,
  samples: 2,
  cg: 5,
  eta: 1,
  sigmaStart: 1,
  start: "tv",
  tvLambda: 0.005,
};
const DDS_CT_DEFAULTS: Params = { steps: 60, sigmaStart: 0.25, tvLambda: 0.001 };

/** A score-based method: its sampler's parameters plus samples, seed and the prior (`model`). */
function scoreMethod(
  name: string,
  sampler: ScoreSampler,
  summary: string,
  defaults: Params,
  modalityDefaults?: ReconMethod["modalityDefaults"],
): ReconMethod {
  return {
    name,
    modalities: ["mri", "ct"],
    summary,
    defaults: { samples: 1, seed: 0, model: "", ...defaults },
    ...(modalityDefaults ? { modalityDefaults } : {}),
    needsPrior: true,
    run: (ctx, p) => {
      if (p.start !== "tv") return scoreReconstruct(sampler, ctx, p);
      // The TV reconstruction (one step of the progress), made when the sampler starts from it.
      const total = Number(p.steps) + 1;
      const tvStart = () => {
        const x = regularised("tv")(
          { ...ctx, onIteration: undefined },
          { lambda: p.tvLambda, iterations: TV_DEFAULTS.iterations },
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
    defaults: {},
    run: (ctx) => toImage(ctx, ctx.model.op.adjoint(ctx.y)),
  },
  {
    name: "fbp",
    modalities: ["ct"],
    summary: "filtered backprojection (filter=ramp|shepp-logan|cosine|hamming|hann)",
    defaults: { filter: "ramp" },
    run: (ctx, p) => fbp(ctx.y, ctx.model.op as ParallelBeamProjector, { filter: p.filter as FbpFilter }),
  },
  {
    name: "sirt",
    modalities: ["ct"],
    summary: "SIRT from the FBP, non-negative, fixed iteration count",
    defaults: { iterations: 100 },
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
    defaults: TV_DEFAULTS,
    run: regularised("tv"),
  },
  {
    name: "wavelet",
    modalities: ["mri", "ct"],
    summary: "l1 stationary-Haar-wavelet regularised least squares by PDHG (CS-wavelet)",
    defaults: { lambda: 0.002, iterations: 300, levels: 4 },
    run: regularised("wavelet"),
  },
  scoreMethod(
    "score",
    "dds",
    "score-based posterior sampling with the shipped prior (the fast dds sampler, default settings)",
    DDS_DEFAULTS,
    { ct: DDS_CT_DEFAULTS },
  ),
  scoreMethod(
    "dds",
    "dds",
    "Decomposed Diffusion Sampler (Chung, Lee & Ye 2024): Tweedie denoise, CG data consistency, DDIM step",
    DDS_DEFAULTS,
    { ct: DDS_CT_DEFAULTS },
  ),
  scoreMethod("song", "song", "predictor-corrector posterior sampling of Song, Shen, Xing & Ermon 2022", {
    steps: 500,
    lambda: 1,
    snr: 0.16,
    cg: 10,
  }),
  scoreMethod(
    "langevin",
    "langevin",
    "annealed Langevin dynamics with a data-consistency gradient (Jalal et al. 2021)",
    { steps: 200, stepsPerLevel: 3 },
  ),
];

const PARAM_CHOICES: Record<string, readonly string[]> = { filter: FBP_FILTERS, start: ["tv", "ls"] };

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

/**
 * A checked method request: a known method for this modality, known parameter names, numbers that
 * are finite and non-negative, choices from their list. `field` names the place in the errors
 * (a CLI flag, or a JSON path such as methods[1]).
 */
export function methodRequest(
  name: string,
  given: Record<string, string | number>,
  modality: Modality,
  field = "method",
): MethodRequest {
  const method = findMethod(name, field);
  if (!method.modalities.includes(modality))
    throw new UserError(
      `method '${name}' does not apply to ${modality.toUpperCase()} (it is for ${method.modalities.join(", ")})`,
      "bad_method",
      field,
    );
  const params: Params = { ...method.defaults, ...method.modalityDefaults?.[modality] };
  for (const [key, value] of Object.entries(given)) {
    if (!(key in method.defaults))
      throw new UserError(
        `method '${name}' has no parameter '${key}' (it takes: ${Object.keys(method.defaults).join(", ") || "none"})`,
        "bad_method",
        field,
      );
    if (typeof method.defaults[key] === "number") {
      const v = typeof value === "number" ? value : value.trim() === "" ? NaN : Number(value);
      if (!Number.isFinite(v) || v < 0)
        throw new UserError(
          `method '${name}': ${key} must be a non-negative number, got '${value}'`,
          "bad_method",
          `${field}.${key}`,
        );
      params[key] = v;
    } else {
      const choices = PARAM_CHOICES[key];
      if (choices && !choices.includes(String(value)))
        throw new UserError(
          `method '${name}': ${key} must be one of ${choices.join(", ")}, got '${value}'`,
          "bad_method",
          `${field}.${key}`,
        );
      params[key] = String(value);
    }
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
      return methodRequest(name, given, modality);
    });
  if (requests.length === 0) throw new UserError("no method given", "bad_method", "method");
  return requests;
}

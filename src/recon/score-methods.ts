/**
 * Score-based reconstruction methods: posterior sampling with a trained prior (src/prior) through
 * the conditional samplers (src/sampling), over the acquisition's own operator.
 *
 * Units: samplers work in the prior's normalised units (prior.json): images divided by their
 * 99.5th percentile (estimated from the data, as no ground truth is used), or for CT priors in HU
 * attenuation relative to water / 2 (so (HU + 1000) / 2000), a fixed scale. The MRI prior is real, so the complex MRI operator is used
 * through its real-input view.
 */
import { basename, join } from "node:path";
import { packageRoot } from "../package-root.js";
import { realInputView } from "../../operators/solvers.js";
import { gaussianSigma } from "../../operators/noise.js";
import { SEED_RANGE } from "../../operators/random.js";
import { dataScale } from "../../operators/scale.js";
import { UserError } from "../errors.js";
import { tf } from "../prior/backend.js";
import { scoreFn } from "../prior/score.js";
import { loadPrior, readPriorInfo, type LoadedPrior, type PriorInfo } from "../prior/checkpoint.js";
import { ddsSample, langevinSample, songSample, type PosteriorProblem } from "../sampling/conditional.js";
import type { Modality } from "./acquisition.js";
import { regularised } from "./classical-methods.js";
import { finiteDifferences, proxSparsity } from "../baselines/regularisers.js";
import { percentile } from "../image/stats.js";
import {
  int,
  iterations,
  num,
  type AcquisitionDefaults,
  type MethodContext,
  type NumberSpec,
  type Params,
  type ParamSpec,
  type ReconMethod,
} from "./method-spec.js";

export function defaultPriorPath(modality: Modality): string {
  return join(packageRoot(), "models", modality);
}

/**
 * How a prior is named and another one asked for, in the words of the caller's field: on the
 * command line (`--model`) by its folder as given; in the API (`model`) by its name, the folder's
 * name under models/ (GET /api/models), never by a server path.
 */
export function priorWords(dir: string, field: string) {
  const cli = field.startsWith("--");
  return {
    name: cli ? dir : `'${basename(dir)}'`,
    choose: (what: string) =>
      cli ? `give ${field} with ${what}` : `set '${field}' to ${what} (GET /api/models)`,
  };
}

/**
 * The prior folder a score-based method uses (`path`, or the shipped one for the modality),
 * checked against the data from its prior.json alone: the pipeline calls this before any slice
 * is reconstructed, so a wrong prior fails at once. `field` names where the prior was chosen.
 */
export function checkPrior(path: string, modality: Modality, field = "--model"): void {
  const dir = path || defaultPriorPath(modality);
  checkFits(dir, inCallerWords(dir, field, () => readPriorInfo(dir)).info, modality, field);
}

/** Runs f, which reads the prior in `dir`; its errors name the prior in the caller's words (priorWords). */
export function inCallerWords<T>(dir: string, field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof UserError) || field.startsWith("--")) throw e;
    throw new UserError(e.message.split(dir).join(priorWords(dir, field).name), e.code, field);
  }
}

/**
 * Whether a prior can serve data of this modality. Any image size can: the network is fully
 * convolutional (src/prior/unet.ts pads to a multiple of 2^(levels-1) and crops back), so a study
 * smaller or larger than the prior's training crops runs.
 */
export function checkFits(dir: string, info: PriorInfo, modality: Modality, field = "--model"): void {
  if (info.modality === modality) return;
  const words = priorWords(dir, field);
  const m = modality.toUpperCase();
  throw new UserError(
    `prior ${words.name} is a ${info.modality.toUpperCase()} prior; this is ${m} data (${words.choose(`a${m === "MRI" ? "n" : ""} ${m} prior`)})`,
    "bad_model",
    field,
  );
}

const priors = new Map<string, LoadedPrior>();
function priorFor(ctx: MethodContext, path: string): LoadedPrior {
  const modality = ctx.model.acquisition.modality;
  const dir = path || defaultPriorPath(modality);
  let prior = priors.get(dir);
  const field = ctx.priorField ?? "--model";
  if (!prior) {
    prior = inCallerWords(dir, field, () => loadPrior(dir));
    priors.set(dir, prior);
  }
  checkFits(dir, prior.info, modality, field);
  return prior;
}

export type ScoreSampler = "dds" | "song" | "langevin";

function scoreReconstruct(
  sampler: ScoreSampler,
  ctx: MethodContext,
  p: Params,
  start?: () => Float32Array,
): Float32Array | { image: Float32Array; std: Float32Array } {
  const prior = priorFor(ctx, String(p.model ?? ""));
  const acq = ctx.model.acquisition;
  const mri = acq.modality === "mri";
  // Operator units -> the prior's units (prior.json normalisation). "hu": attenuation relative to
  // water / 2. "percentile": the image's 99.5th percentile, estimated without ground truth from
  // |A^H y| (the zero-filled image for MRI; a backprojection / ||A||^2 for CT).
  // (The MRI operator is an isometry on what it measures: ||A|| = 1.)
  const n = prior.info.normalisation;
  const scale =
    n.kind === "percentile"
      ? dataScale(ctx.model.op, ctx.y, (n.percentile ?? 99.5) / 100, mri ? 1 : undefined)
      : 2;
  const sigmaY = gaussianSigma(ctx.model.noise);
  const problem: PosteriorProblem = {
    op: realInputView(ctx.model.op),
    y: ctx.y.map((v) => v / scale),
    noiseSigma: sigmaY / scale,
    rows: ctx.rows,
    cols: ctx.cols,
  };
  const { net } = prior;
  const score = scoreFn(prior);
  const common = {
    samples: Number(p.samples),
    steps: Number(p.steps),
    // Each slice its own noise (seed + slice, as the simulated measurement noise), so the slices of
    // a volume are independent draws and their mean does not hang on one realisation.
    seed: Number(p.seed) + ctx.slice,
    onStep: ctx.onIteration,
    signal: ctx.signal,
  };
  const x =
    sampler === "dds"
      ? ddsSample(net.sde, score, problem, {
          ...common,
          cgIterations: Number(p.cg),
          eta: Number(p.eta),
          sigmaStart: Number(p.sigmaStart) || undefined,
          start: start && (() => start().map((v) => v / scale)),
          regularise: tvProx(ctx, p),
        })
      : sampler === "song"
        ? songSample(net.sde, score, problem, {
            ...common,
            lambda: Number(p.lambda),
            snr: Number(p.snr),
            cgIterations: Number(p.cg),
          })
        : langevinSample(net.sde, score, problem, { ...common, stepsPerLevel: Number(p.stepsPerLevel) });
  // The posterior mean (and with several samples the per-pixel std), back in operator units. MRI
  // results are magnitudes like every MRI method's.
  const [mean, std] = tf.tidy(() => {
    const samples = mri ? tf.abs(x) : x;
    const { mean, variance } = tf.moments(samples, 0);
    return [tf.mul(mean, scale), tf.mul(tf.sqrt(variance), scale)];
  });
  const image = Float32Array.from(mean.dataSync());
  const spread = Float32Array.from(std.dataSync());
  tf.dispose([x, mean, std]);
  return common.samples > 1 ? { image, std: spread } : image;
}

/**
 * The TV prox each Tweedie estimate passes through before its data consistency (proxLambda > 0):
 * argmin_x 1/2 ||x - x0||^2 + lambda s TV(x), s the estimate's 99th percentile of |x0| (so lambda
 * is in the units of the `tv` method's lambda), by proxIterations of FGP. It removes the
 * low-contrast texture a prior invents on anatomy it has not seen, and keeps edges.
 */
function tvProx(ctx: MethodContext, p: Params): ((x0: Float32Array) => Float32Array) | undefined {
  const lambda = Number(p.proxLambda);
  if (!(lambda > 0)) return undefined;
  const w = finiteDifferences(ctx.rows, ctx.cols, false);
  return (x0) =>
    proxSparsity(w, x0, lambda, percentile(x0.map(Math.abs), 0.99) || 1, Number(p.proxIterations));
}

/** What every score-based method takes: sampler steps, samples, their seed and the prior. */
const SCORE_PARAMS = {
  steps: int(1, 2000, 75, "sampler steps (noise levels)"),
  samples: int(1, 64, 1, "posterior samples: their mean is the image, their spread the uncertainty map"),
  seed: int(SEED_RANGE.min, SEED_RANGE.max, 0, "seed of the sampler's noise (slice k draws with seed + k)"),
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
 * starts from the prior at sigma_max. Both modalities start from TV: MRI at sigma 1 with two
 * posterior samples of 34 steps after a 200-iteration TV start (averaged; their spread is the
 * uncertainty map); CT at sigma 0.25 with one sample of 40 steps (60 at 32 views or fewer:
 * DDS_SPARSE_CT) after a 60-iteration TV start (CT's data consistency costs most of a step: at 60
 * views two samples, or a 300-iteration start, go far past 10 s a slice). Each Tweedie estimate
 * passes through a TV prox before its data consistency (tvProx; lambda 0.008 MRI, 0.003 CT, tuned
 * on the out-of-distribution validation set: +0.25-0.5 dB MRI, +1.5-2.4 dB CT; proxLambda 0 is the
 * plain sampler of the paper).
 */
const DDS_PARAMS = {
  ...SCORE_PARAMS,
  steps: { ...SCORE_PARAMS.steps, default: 34 },
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
  tvIterations: iterations(200, "iterations of the TV start"),
  proxLambda: num(0, 1e3, 0.008, "lambda of the TV prox of each Tweedie estimate (0: none)"),
  proxIterations: int(1, 1000, 10, "FGP iterations of that prox"),
} satisfies Record<string, ParamSpec>;
const DDS_CT_DEFAULTS: Params = {
  steps: 40,
  samples: 1,
  sigmaStart: 0.25,
  tvLambda: 0.001,
  tvIterations: 60,
  proxLambda: 0.003,
};
/**
 * Sparse-view CT: the fewer the views, the cheaper a step's data consistency and the more of the
 * image the prior has to supply, so more steps fit in the time budget and pay (docs/tuning.md,
 * "more steps where views are few": at 23 views +0.65 dB on validation for 1.6x the time; at 60
 * views 60 steps would cost 1.5x of a slice that is already near the budget).
 */
const DDS_SPARSE_CT: AcquisitionDefaults = {
  label: "CT <= 32 views",
  applies: (acq) => acq.modality === "ct" && acq.views <= 32,
  params: { steps: 60 },
};

const DDS_TUNED = { modalityDefaults: { ct: DDS_CT_DEFAULTS }, acquisitionDefaults: [DDS_SPARSE_CT] };

/** A score-based method: its sampler's parameters plus samples, seed and the prior (`model`). */
function scoreMethod(
  name: string,
  sampler: ScoreSampler,
  summary: string,
  params: Record<string, ParamSpec>,
  tuned?: Pick<ReconMethod, "modalityDefaults" | "acquisitionDefaults">,
): ReconMethod {
  return {
    name,
    modalities: ["mri", "ct"],
    summary,
    params: { ...SCORE_PARAMS, ...params },
    ...tuned,
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

/** The score-based methods, in the order of `--help`. */
export const SCORE_METHODS: readonly ReconMethod[] = [
  scoreMethod(
    "score",
    "dds",
    "score-based posterior sampling with the shipped prior (the fast dds sampler, default settings)",
    DDS_PARAMS,
    DDS_TUNED,
  ),
  scoreMethod(
    "dds",
    "dds",
    "Decomposed Diffusion Sampler (Chung, Lee & Ye 2024): Tweedie denoise, TV prox, CG data consistency, DDIM step",
    DDS_PARAMS,
    DDS_TUNED,
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

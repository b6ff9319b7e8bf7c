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
import { magnitude, realToComplex } from "../../operators/complex.js";
import { cachedOperatorNorm } from "../baselines/pdhg.js";
import { realInputView } from "../../operators/solvers.js";
import { UserError } from "../errors.js";
import { percentile } from "../image/stats.js";
import { tf } from "../prior/backend.js";
import { engineFor, scoreFunction } from "../prior/engine.js";
import { loadPrior, readPriorInfo, type LoadedPrior, type PriorInfo } from "../prior/checkpoint.js";
import { ddsSample, langevinSample, songSample, type PosteriorProblem } from "../sampling/conditional.js";
import type { Modality } from "./acquisition.js";
import type { MethodContext, Params } from "./methods.js";

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

export function scoreReconstruct(
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
  let scale = 2;
  if (prior.info.normalisation.kind === "percentile") {
    const back = magnitude(mri ? ctx.model.op.adjoint(ctx.y) : realToComplex(ctx.model.op.adjoint(ctx.y)));
    const norm = mri ? 1 : cachedOperatorNorm(ctx.model.op) ** 2;
    scale = percentile(back, (prior.info.normalisation.percentile ?? 99.5) / 100) / norm || 1;
  }
  const sigmaY = mri ? acq.noiseSigma : acq.noise.kind === "gaussian" ? acq.noise.sigma : 0;
  const problem: PosteriorProblem = {
    op: realInputView(ctx.model.op),
    y: ctx.y.map((v) => v / scale),
    noiseSigma: sigmaY / scale,
    rows: ctx.rows,
    cols: ctx.cols,
  };
  const { net } = prior;
  const score = scoreFunction(engineFor(prior));
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

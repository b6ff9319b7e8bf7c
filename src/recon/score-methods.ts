/**
 * Score-based reconstruction methods: posterior sampling with a trained prior (src/prior) through
 * the conditional samplers (src/sampling), over the acquisition's own operator.
 *
 * Units: samplers work in the prior's normalised units (prior.json): images divided by their
 * 99.5th percentile (estimated from the data, as no ground truth is used), or for CT priors in HU
 * attenuation relative to water / 2 (so (HU + 1000) / 2000), a fixed scale. The MRI prior is real, so the complex MRI operator is used
 * through its real-input view.
 */
import { join } from "node:path";
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
import type { MethodContext, Params } from "./methods.js";

export function defaultPriorPath(modality: "mri" | "ct"): string {
  return join(packageRoot(), "models", modality);
}

/**
 * The prior folder a score-based method uses (`path`, or the shipped one for the modality),
 * checked against the data from its prior.json alone: the pipeline calls this before any slice
 * is reconstructed, so a wrong prior fails at once.
 */
export function checkPrior(path: string, modality: "mri" | "ct", rows: number, cols: number): void {
  const dir = path || defaultPriorPath(modality);
  checkFits(dir, readPriorInfo(dir).info, modality, rows, cols);
}

function checkFits(dir: string, info: PriorInfo, modality: "mri" | "ct", rows: number, cols: number): void {
  if (info.modality !== modality)
    throw new UserError(
      `prior ${dir} is a ${info.modality.toUpperCase()} prior; this is ${modality.toUpperCase()} data (give --model with a ${modality.toUpperCase()} prior)`,
      "bad_model",
      "--model",
    );
  const size = info.imageSize;
  if (rows < size || cols < size)
    throw new UserError(
      `prior ${dir} was trained on ${size}x${size} images; this image is ${rows}x${cols}, smaller than anything it has seen (give --model with a prior trained at this size or smaller)`,
      "bad_model",
      "--model",
    );
}

const priors = new Map<string, LoadedPrior>();
function priorFor(ctx: MethodContext, path: string): LoadedPrior {
  const modality = ctx.model.acquisition.modality;
  const dir = path || defaultPriorPath(modality);
  let prior = priors.get(dir);
  if (!prior) {
    prior = loadPrior(dir);
    priors.set(dir, prior);
  }
  checkFits(dir, prior.info, modality, ctx.rows, ctx.cols);
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

/**
 * Unconditional samplers of a score-based prior (Song et al. ICLR 2021, after score_sde's
 * sampling.py): predictor-corrector sampling with a reverse-diffusion or Euler-Maruyama predictor
 * and a Langevin corrector whose step follows a target signal-to-noise ratio, and the probability
 * flow ODE integrated with Heun's method (score_sde uses adaptive RK45; fixed steps keep the cost
 * and the seed's result predictable). Each is a step function over the chain runner (chain.ts).
 * The score is any function of (x, t): a trained network (scoreFn, src/prior), or an exact score
 * in the tests.
 */
import { tf } from "../prior/backend.js";
import type { ScoreFn } from "../prior/score.js";
import type { Sde } from "../prior/sde.js";
import { noiseSource, priorSample, runChain, schedule, type ChainOptions, type Noise } from "./chain.js";

export interface PcOptions extends ChainOptions {
  steps: number;
  predictor?: "reverse-diffusion" | "euler-maruyama" | "none";
  corrector?: "langevin" | "none";
  /** Langevin corrector steps per noise level, and its signal-to-noise ratio. */
  correctorSteps?: number;
  snr?: number;
  /** Sampling stops at t = eps rather than 0, where the score is singular. */
  eps?: number;
  seed?: number;
}

/** PC sampling from the prior over `steps` noise levels; the result is the last step's mean. */
export function pcSample(sde: Sde, score: ScoreFn, shape: number[], o: PcOptions): tf.Tensor {
  const n = o.steps;
  const times = schedule(n, sde.T, o.eps ?? 1e-3);
  const noise = noiseSource(o.seed ?? 0);
  const predictor = o.predictor ?? "reverse-diffusion";
  const corrector = o.corrector ?? "langevin";
  return runChain<tf.Tensor[]>(
    {
      steps: n,
      start: () => {
        const x = priorSample(sde, shape, noise);
        return [x, x.clone()];
      },
      step: ([x, mean], i) => {
        const t = times.t(i);
        if (corrector === "langevin")
          [x, mean] = langevinStep(sde, score, x, t, n, o.snr ?? 0.16, o.correctorSteps ?? 1, noise);
        if (predictor !== "none") [x, mean] = predictorStep(sde, score, x, t, n, predictor, noise);
        return [x, mean];
      },
      finish: ([, mean]) => mean,
    },
    o,
  );
}

/** One predictor step at t of n: [the next sample, its mean (the sample without the new noise)]. */
export function predictorStep(
  sde: Sde,
  score: ScoreFn,
  x: tf.Tensor,
  t: number,
  n: number,
  kind: "reverse-diffusion" | "euler-maruyama",
  noise: Noise,
): [tf.Tensor, tf.Tensor] {
  const s = score(x, t);
  if (kind === "reverse-diffusion") {
    const { fCoef, G } = sde.discretize(t, n);
    const mean = tf.add(tf.mul(x, 1 - fCoef), tf.mul(s, G * G));
    return [tf.add(mean, tf.mul(noise(x.shape), G)), mean];
  }
  const dt = -1 / n;
  const g = sde.diffusion(t);
  const drift = tf.sub(tf.mul(x, sde.driftCoef(t)), tf.mul(s, g * g));
  const mean = tf.add(x, tf.mul(drift, dt));
  return [tf.add(mean, tf.mul(noise(x.shape), g * Math.sqrt(-dt))), mean];
}

/**
 * Langevin MCMC at fixed noise level t with step 2 alpha (snr ||z|| / ||score||)^2, norms
 * averaged over the batch (score_sde LangevinCorrector); alpha is 1 - beta_i for VP SDEs.
 */
export function langevinStep(
  sde: Sde,
  score: ScoreFn,
  x: tf.Tensor,
  t: number,
  n: number,
  snr: number,
  steps: number,
  noise: Noise,
): [tf.Tensor, tf.Tensor] {
  const alpha = sde.config.name === "vp" ? 1 - sde.discretize(t, n).G ** 2 : 1;
  let mean = x;
  for (let k = 0; k < steps; k++) {
    const grad = score(x, t);
    const z = noise(x.shape);
    const gradNorm = batchMeanNorm(grad);
    const noiseNorm = batchMeanNorm(z);
    const step = 2 * alpha * ((snr * noiseNorm) / Math.max(gradNorm, 1e-12)) ** 2;
    mean = tf.add(x, tf.mul(grad, step));
    x = tf.add(mean, tf.mul(z, Math.sqrt(2 * step)));
  }
  return [x, mean];
}

function batchMeanNorm(v: tf.Tensor): number {
  const b = v.shape[0] ?? 1;
  return tf.tidy(() => tf.mean(tf.norm(tf.reshape(v, [b, -1]), "euclidean", 1)).dataSync()[0]);
}

export interface OdeOptions extends ChainOptions {
  steps: number;
  eps?: number;
  seed?: number;
}

/** Probability-flow ODE dx/dt = f(t) x - g(t)^2 score / 2, from T to eps with Heun's method. */
export function odeSample(sde: Sde, score: ScoreFn, shape: number[], o: OdeOptions): tf.Tensor {
  const times = schedule(o.steps, sde.T, o.eps ?? 1e-3, "intervals");
  const h = times.h;
  const noise = noiseSource(o.seed ?? 0);
  const velocity = (x: tf.Tensor, t: number) => {
    const g = sde.diffusion(t);
    return tf.sub(tf.mul(x, sde.driftCoef(t)), tf.mul(score(x, t), 0.5 * g * g));
  };
  return runChain(
    {
      steps: o.steps,
      start: () => priorSample(sde, shape, noise),
      step: (x, i) => {
        const t = times.t(i);
        const v1 = velocity(x, t);
        const xe = tf.sub(x, tf.mul(v1, h));
        const v2 = velocity(xe, t - h);
        return tf.sub(x, tf.mul(tf.add(v1, v2), h / 2));
      },
      finish: (x) => x,
    },
    o,
  );
}

/**
 * Unconditional samplers of a score-based prior (Song et al. ICLR 2021, after score_sde's
 * sampling.py): predictor-corrector sampling with a reverse-diffusion or Euler-Maruyama predictor
 * and a Langevin corrector whose step follows a target signal-to-noise ratio, and the probability
 * flow ODE integrated with Heun's method (score_sde uses adaptive RK45; fixed steps keep the cost
 * and the seed's result predictable). The score is any function of (x, t): a trained network, or
 * an exact score in the tests.
 */
import { tf } from "../prior/backend.js";
import type { Sde } from "../prior/sde.js";

export type ScoreFn = (x: tf.Tensor, t: number) => tf.Tensor;

export interface PcOptions {
  steps: number;
  predictor?: "reverse-diffusion" | "euler-maruyama" | "none";
  corrector?: "langevin" | "none";
  /** Langevin corrector steps per noise level, and its signal-to-noise ratio. */
  correctorSteps?: number;
  snr?: number;
  /** Sampling stops at t = eps rather than 0, where the score is singular. */
  eps?: number;
  seed?: number;
  onStep?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Seeded standard normal noise; each call draws from its own sub-seed. */
export function noiseSource(seed: number) {
  // Seeds start at 1: TensorFlow.js treats a seed of 0 as "no seed" and draws from Math.random.
  let k = 1;
  return (shape: number[]) => tf.randomNormal(shape, 0, 1, "float32", seed * 1_000_003 + k++);
}

/** The sample with the highest noise level the sampler starts from. */
export function priorSample(sde: Sde, shape: number[], noise: (s: number[]) => tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(noise(shape), sde.priorStd()));
}

export function pcSample(sde: Sde, score: ScoreFn, shape: number[], o: PcOptions): tf.Tensor {
  const n = o.steps;
  const eps = o.eps ?? 1e-3;
  const noise = noiseSource(o.seed ?? 0);
  const predictor = o.predictor ?? "reverse-diffusion";
  const corrector = o.corrector ?? "langevin";
  let x = priorSample(sde, shape, noise);
  let mean = x.clone();
  for (let i = 0; i < n; i++) {
    if (o.signal?.aborted) {
      x.dispose();
      mean.dispose();
      throw o.signal.reason ?? new Error("aborted");
    }
    const t = sde.T - (i * (sde.T - eps)) / (n - 1);
    const next = tf.tidy(() => {
      let xi = x;
      let mi = mean;
      if (corrector === "langevin")
        [xi, mi] = langevinStep(sde, score, xi, t, n, o.snr ?? 0.16, o.correctorSteps ?? 1, noise);
      if (predictor !== "none") [xi, mi] = predictorStep(sde, score, xi, t, n, predictor, noise);
      return [xi, mi];
    });
    x.dispose();
    mean.dispose();
    [x, mean] = next;
    o.onStep?.(i + 1, n);
  }
  x.dispose();
  return mean;
}

export function predictorStep(
  sde: Sde,
  score: ScoreFn,
  x: tf.Tensor,
  t: number,
  n: number,
  kind: "reverse-diffusion" | "euler-maruyama",
  noise: (s: number[]) => tf.Tensor,
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
  noise: (s: number[]) => tf.Tensor,
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

export interface OdeOptions {
  steps: number;
  eps?: number;
  seed?: number;
  onStep?: (done: number, total: number) => void;
}

/** Probability-flow ODE dx/dt = f(t) x - g(t)^2 score / 2, from T to eps with Heun's method. */
export function odeSample(sde: Sde, score: ScoreFn, shape: number[], o: OdeOptions): tf.Tensor {
  const eps = o.eps ?? 1e-3;
  const noise = noiseSource(o.seed ?? 0);
  const velocity = (x: tf.Tensor, t: number) => {
    const g = sde.diffusion(t);
    return tf.sub(tf.mul(x, sde.driftCoef(t)), tf.mul(score(x, t), 0.5 * g * g));
  };
  let x = priorSample(sde, shape, noise);
  const h = (sde.T - eps) / o.steps;
  for (let i = 0; i < o.steps; i++) {
    const t = sde.T - i * h;
    const next = tf.tidy(() => {
      const v1 = velocity(x, t);
      const xe = tf.sub(x, tf.mul(v1, h));
      const v2 = velocity(xe, t - h);
      return tf.sub(x, tf.mul(tf.add(v1, v2), h / 2));
    });
    x.dispose();
    x = next;
    o.onStep?.(i + 1, o.steps);
  }
  return x;
}

/**
 * Conditional (posterior) samplers for y = A x + n with a score-based prior, over any real-input
 * LinearOperator (MRI through realInputView, CT directly) — one implementation for every modality.
 * The prior's score acts on a batch [K, H, W, 1] of K independent posterior samples; data
 * consistency acts on each sample with the operator (Float32Array), through conjugate gradients.
 *
 * - dds: Decomposed Diffusion Sampler (Chung, Lee & Ye, ICLR 2024) for the VE SDE: each step
 *   denoises by Tweedie's formula x0 = x_t + sigma_t^2 s(x_t, t), makes x0 data-consistent by a
 *   few CG iterations — on A^T A x = A^T y started at x0 when noise-free, or on
 *   (I + gamma A^T A) x = x0 + gamma A^T y with gamma = sigma_t^2 / sigma_y^2 under noise (the
 *   MAP update of a Gaussian around x0 of width sigma_t) — and re-noises DDIM-style with
 *   stochasticity eta. About `steps` network evaluations.
 * - song: the predictor-corrector sampler of Song, Shen, Xing & Ermon (ICLR 2022). Before each
 *   predictor and corrector step, y_t ~ p(y_t | y) = y + sigma_t A z is drawn and the sample's
 *   measured part is replaced by a lambda-mix: x' = x + lambda A^+ (y_t - A x), the
 *   transform-domain replacement T^-1[lambda Lambda y_t + (1 - lambda) Lambda T x + (I - Lambda) T x]
 *   written with the pseudo-inverse A^+ = (A^T A)^+ A^T (CG). For MRI, A^T A is the Fourier
 *   projection F^H M F and A^+ is exact in one CG step; for CT it is the least-squares view
 *   completion, accurate to the CG iteration count. A final Tweedie denoise and a lambda = 1
 *   projection end it.
 * - langevin: annealed Langevin dynamics with a data-consistency gradient (Jalal et al., NeurIPS
 *   2021): at noise levels sigma_i, x <- x + a_i [s(x, sigma_i) + A^T (y - A x) / (sigma_y^2 +
 *   sigma_i^2)] + sqrt(2 a_i) z, with a_i = epsilon sigma_i^2 / max(1, ||A||^2).
 */
import { conjugateGradientNormal } from "../../operators/solvers.js";
import { operatorNorm, type LinearOperator } from "../../operators/linear-operator.js";
import { tf } from "../prior/backend.js";
import type { Sde, VeSde } from "../prior/sde.js";
import { noiseSource, predictorStep, langevinStep, type ScoreFn } from "./unconditional.js";
import { createRng } from "../../operators/random.js";

export interface PosteriorProblem {
  /** Real-input operator on [rows, cols] images. */
  op: LinearOperator;
  y: Float32Array;
  /** Measurement noise standard deviation (per real component); 0 for noise-free. */
  noiseSigma: number;
  rows: number;
  cols: number;
}

export interface ConditionalOptions {
  /** Independent posterior samples drawn together. */
  samples: number;
  steps: number;
  seed?: number;
  eps?: number;
  onStep?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Applies f to each sample of a [K, H, W, 1] batch. */
function perSample(x: tf.Tensor, f: (v: Float32Array, k: number) => Float32Array): tf.Tensor {
  const [k, h, w] = x.shape;
  const n = h! * w!;
  const data = x.dataSync() as Float32Array;
  const out = new Float32Array(data.length);
  for (let i = 0; i < k; i++) out.set(f(data.slice(i * n, (i + 1) * n), i), i * n);
  return tf.tensor4d(out, [k, h!, w!, 1]);
}

const checkAbort = (signal?: AbortSignal) => {
  if (signal?.aborted) throw signal.reason ?? new Error("aborted");
};

/**
 * Runs a sampler's loop on its current sample `state.x`: the sample it ends with is returned, and
 * on an error (a cancel) the current one is freed, so that no run leaves a tensor behind.
 */
function owning(state: { x: tf.Tensor }, loop: () => tf.Tensor): tf.Tensor {
  try {
    return loop();
  } catch (err) {
    state.x.dispose();
    throw err;
  }
}

/**
 * Step i of `steps` times evenly spaced from `from` down to eps (one step: `from` alone),
 * computed per step: nothing the size of the step count is allocated.
 */
function timeAt(i: number, steps: number, from: number, eps: number): number {
  return steps > 1 ? from - (i * (from - eps)) / (steps - 1) : from;
}

export interface DdsOptions extends ConditionalOptions {
  cgIterations?: number;
  eta?: number;
  /**
   * Start at this noise level from an estimate (`start`) plus noise instead of from the prior at
   * T ("come closer, diffuse faster", Chung, Sim & Ye, CVPR 2022): the estimate already fixes the
   * coarse image, and the highest noise levels are skipped. Default: from T.
   */
  sigmaStart?: number;
  /**
   * Makes the estimate the sampler starts from; called only when it starts below sigma_max
   * (default: the least-squares A^+ y).
   */
  start?: () => Float32Array;
}

export function ddsSample(sde: Sde, score: ScoreFn, p: PosteriorProblem, o: DdsOptions): tf.Tensor {
  if (sde.config.name !== "ve") throw new RangeError("dds is implemented for the VE SDE");
  const ve = sde as VeSde;
  const eps = o.eps ?? 1e-3;
  // A start below the prior's smallest noise level starts at that level (t = eps).
  const tStart =
    o.sigmaStart && o.sigmaStart < ve.sigmaMax
      ? Math.max(eps, Math.log(o.sigmaStart / ve.sigmaMin) / Math.log(ve.sigmaMax / ve.sigmaMin))
      : sde.T;
  const steps = o.steps;
  const t = (i: number) => timeAt(i, steps, tStart, eps);
  const noise = noiseSource(o.seed ?? 0);
  const aty = p.op.adjoint(p.y);
  const cg = o.cgIterations ?? 5;
  const eta = o.eta ?? 1;
  const start =
    tStart < sde.T
      ? (o.start?.() ?? conjugateGradientNormal(p.op, aty, new Float32Array(p.rows * p.cols), cg))
      : undefined;
  const state = {
    x: tf.tidy(() => {
      const x = tf.mul(noise([o.samples, p.rows, p.cols, 1]), sde.std(t(0)));
      return start ? tf.add(x, tf.tensor4d(start, [1, p.rows, p.cols, 1])) : x;
    }),
  };
  return owning(state, () => {
    for (let i = 0; i < steps; i++) {
      checkAbort(o.signal);
      const x = state.x;
      const s = sde.std(t(i));
      const sNext = i + 1 < steps ? sde.std(t(i + 1)) : 0;
      const x0 = tf.tidy(() => tf.add(x, tf.mul(score(x, t(i)), s * s)));
      let x0dc: tf.Tensor;
      try {
        x0dc = perSample(x0, (v) => dataConsistency(p, aty, v, cg, s));
      } catch (err) {
        x0.dispose();
        throw err;
      }
      const next = tf.tidy(() => {
        if (sNext === 0) return x0dc.clone();
        const epsHat = tf.div(tf.sub(x, x0), s);
        const c = eta * Math.sqrt((sNext * sNext * (s * s - sNext * sNext)) / (s * s));
        return tf.add(
          tf.add(x0dc, tf.mul(epsHat, Math.sqrt(Math.max(0, sNext * sNext - c * c)))),
          tf.mul(noise(x.shape), c),
        );
      });
      x.dispose();
      x0.dispose();
      x0dc.dispose();
      state.x = next;
      o.onStep?.(i + 1, steps);
    }
    return state.x;
  });
}

/** DDS data consistency of one Tweedie estimate. */
function dataConsistency(
  p: PosteriorProblem,
  aty: Float32Array,
  x0: Float32Array,
  iterations: number,
  sigmaT: number,
): Float32Array {
  if (p.noiseSigma <= 0) return conjugateGradientNormal(p.op, aty, x0, iterations);
  // (gamma A^T A + I) x = x0 + gamma A^T y, divided by gamma: (A^T A + I / gamma) x = A^T y + x0 / gamma.
  const mu = (p.noiseSigma * p.noiseSigma) / (sigmaT * sigmaT);
  const b = new Float32Array(aty.length);
  for (let i = 0; i < b.length; i++) b[i] = aty[i] + mu * x0[i];
  return conjugateGradientNormal(p.op, b, x0, iterations, mu);
}

export interface SongOptions extends ConditionalOptions {
  lambda?: number;
  snr?: number;
  cgIterations?: number;
}

export function songSample(sde: Sde, score: ScoreFn, p: PosteriorProblem, o: SongOptions): tf.Tensor {
  const steps = o.steps;
  const eps = o.eps ?? 1e-3;
  const noise = noiseSource(o.seed ?? 0);
  const rng = createRng((o.seed ?? 0) + 17);
  const lambda = o.lambda ?? 1;
  const cg = o.cgIterations ?? 10;
  const n = p.rows * p.cols;
  // x' = x + lambda A^+ (y_t - A x), with y_t = y + sigma_t A z drawn afresh for each sample.
  const replace = (x: tf.Tensor, sigma: number, weight: number) =>
    perSample(x, (v) => {
      const z = new Float32Array(n);
      for (let i = 0; i < n; i++) z[i] = rng.normal() * sigma;
      const az = p.op.forward(z);
      const av = p.op.forward(v);
      const r = new Float32Array(p.y.length);
      for (let i = 0; i < r.length; i++) r[i] = p.y[i] + az[i] - av[i];
      const d = conjugateGradientNormal(p.op, p.op.adjoint(r), new Float32Array(n), cg);
      for (let i = 0; i < n; i++) v[i] += weight * d[i];
      return v;
    });
  const state = { x: tf.tidy(() => tf.mul(noise([o.samples, p.rows, p.cols, 1]), sde.priorStd())) };
  const x0 = owning(state, () => {
    for (let i = 0; i < steps; i++) {
      checkAbort(o.signal);
      const t = timeAt(i, steps, sde.T, eps);
      const sigma = sde.std(t);
      const step = (fn: (v: tf.Tensor) => tf.Tensor) => {
        const dc = replace(state.x, sigma, lambda);
        const out = tf.tidy(() => fn(dc));
        dc.dispose();
        state.x.dispose();
        state.x = out;
      };
      step((v) => langevinStep(sde, score, v, t, steps, o.snr ?? 0.16, 1, noise)[0]);
      step((v) => predictorStep(sde, score, v, t, steps, "reverse-diffusion", noise)[1]);
      o.onStep?.(i + 1, steps);
    }
    // Final Tweedie denoise, then the lambda = 1 projection onto the measurements.
    const t = timeAt(steps - 1, steps, sde.T, eps);
    const s = sde.std(t);
    const x = state.x;
    const denoised = tf.tidy(() => tf.add(x, tf.mul(score(x, t), s * s)));
    x.dispose();
    state.x = denoised;
    return denoised;
  });
  try {
    return replace(x0, 0, 1);
  } finally {
    x0.dispose();
  }
}

export interface LangevinOptions extends ConditionalOptions {
  /** Langevin steps per noise level (steps is the number of levels). */
  stepsPerLevel?: number;
  epsilon?: number;
}

export function langevinSample(sde: Sde, score: ScoreFn, p: PosteriorProblem, o: LangevinOptions): tf.Tensor {
  const steps = o.steps;
  const eps = o.eps ?? 1e-3;
  const noise = noiseSource(o.seed ?? 0);
  const per = o.stepsPerLevel ?? 3;
  // The prior term is (1 / sigma_i^2)-smooth and the likelihood term at most ||A||^2 / sigma_i^2,
  // so a_i = epsilon sigma_i^2 / ||A||^2 (||A|| >= 1 assumed) keeps every step stable.
  const epsilon = (o.epsilon ?? 0.2) / Math.max(1, operatorNorm(p.op, 20) ** 2);
  const state = { x: tf.tidy(() => tf.mul(noise([o.samples, p.rows, p.cols, 1]), sde.priorStd())) };
  return owning(state, () => {
    for (let i = 0; i < steps; i++) {
      const t = timeAt(i, steps, sde.T, eps);
      const sigma = sde.std(t);
      const a = epsilon * sigma * sigma;
      const w = 1 / (p.noiseSigma * p.noiseSigma + sigma * sigma);
      for (let k = 0; k < per; k++) {
        checkAbort(o.signal);
        const x = state.x;
        const grad = perSample(x, (v) => {
          const av = p.op.forward(v);
          for (let j = 0; j < av.length; j++) av[j] = (p.y[j] - av[j]) * w;
          return p.op.adjoint(av);
        });
        const next = tf.tidy(() =>
          tf.add(tf.add(x, tf.mul(tf.add(score(x, t), grad), a)), tf.mul(noise(x.shape), Math.sqrt(2 * a))),
        );
        grad.dispose();
        x.dispose();
        state.x = next;
      }
      o.onStep?.(i + 1, steps);
    }
    return state.x;
  });
}

/**
 * Conditional (posterior) samplers for y = A x + n with a score-based prior, over any real-input
 * LinearOperator (MRI through realInputView, CT directly) — one implementation for every modality.
 * The prior's score acts on a batch [K, H, W, 1] of K independent posterior samples; data
 * consistency acts on each sample with the operator (Float32Array), through conjugate gradients.
 *
 * - dds: Decomposed Diffusion Sampler (Chung, Lee & Ye, ICLR 2024) for the VE SDE: each step
 *   denoises by Tweedie's formula x0 = x_t + sigma_t^2 s(x_t, t) (optionally regularised, e.g. by
 *   a TV prox), makes x0 data-consistent by a few CG iterations — on A^T A x = A^T y started at x0
 *   when noise-free, or on
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
 *
 * Each is a step function over the chain runner (chain.ts); the data-consistency maths (the l2
 * prox, the pseudo-inverse, the operator norm) is the operator's (operators/).
 */
import { cachedOperatorNorm, type LinearOperator } from "../../operators/linear-operator.js";
import { createRng } from "../../operators/random.js";
import { proxL2, pseudoInverse } from "../../operators/solvers.js";
import { tf } from "../prior/backend.js";
import type { ScoreFn } from "../prior/score.js";
import type { Sde, VeSde } from "../prior/sde.js";
import { noiseSource, runChain, schedule, startSample, type ChainOptions } from "./chain.js";
import { langevinStep, predictorStep } from "./unconditional.js";

export interface PosteriorProblem {
  /** Real-input operator on [rows, cols] images. */
  op: LinearOperator;
  y: Float32Array;
  /** Measurement noise standard deviation (per real component); 0 for noise-free. */
  noiseSigma: number;
  rows: number;
  cols: number;
}

export interface ConditionalOptions extends ChainOptions {
  /** Independent posterior samples drawn together. */
  samples: number;
  steps: number;
  seed?: number;
  eps?: number;
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
  /**
   * Applied to each sample's Tweedie estimate before its data consistency, e.g. a TV prox (the
   * hybrid of a score prior with a classical regulariser, as DiffusionMBIR's TV, Chung et al.
   * CVPR 2023). Default: none.
   */
  regularise?: (x0: Float32Array) => Float32Array;
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
  const times = schedule(steps, tStart, eps);
  const noise = noiseSource(o.seed ?? 0);
  const aty = p.op.adjoint(p.y);
  const cg = o.cgIterations ?? 5;
  const eta = o.eta ?? 1;
  const estimate = tStart < sde.T ? (o.start?.() ?? pseudoInverse(p.op, p.y, cg)) : undefined;
  // Data consistency of a Tweedie estimate at noise level s: the MAP update of a Gaussian around
  // it of width s under measurement noise, (gamma A^T A + I) x = x0 + gamma A^T y with
  // gamma = s^2 / sigma_y^2, i.e. the l2 prox with mu = sigma_y^2 / s^2 (0 when noise-free).
  const mu = (s: number) => (p.noiseSigma <= 0 ? 0 : (p.noiseSigma * p.noiseSigma) / (s * s));
  return runChain(
    {
      steps,
      start: () => startSample(noise, [o.samples, p.rows, p.cols, 1], sde.std(times.t(0)), estimate),
      step: (x, i) => {
        const t = times.t(i);
        const s = sde.std(t);
        const sNext = i + 1 < steps ? sde.std(times.t(i + 1)) : 0;
        const x0 = tf.add(x, tf.mul(score(x, t), s * s));
        const x0dc = perSample(x0, (v) => proxL2(p.op, aty, o.regularise?.(v) ?? v, mu(s), cg));
        if (sNext === 0) return x0dc;
        const epsHat = tf.div(tf.sub(x, x0), s);
        const c = eta * Math.sqrt((sNext * sNext * (s * s - sNext * sNext)) / (s * s));
        return tf.add(
          tf.add(x0dc, tf.mul(epsHat, Math.sqrt(Math.max(0, sNext * sNext - c * c)))),
          tf.mul(noise(x.shape), c),
        );
      },
      finish: (x) => x,
    },
    o,
  );
}

export interface SongOptions extends ConditionalOptions {
  lambda?: number;
  snr?: number;
  cgIterations?: number;
}

export function songSample(sde: Sde, score: ScoreFn, p: PosteriorProblem, o: SongOptions): tf.Tensor {
  const steps = o.steps;
  const times = schedule(steps, sde.T, o.eps ?? 1e-3);
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
      const d = pseudoInverse(p.op, r, cg);
      for (let i = 0; i < n; i++) v[i] += weight * d[i];
      return v;
    });
  return runChain(
    {
      steps,
      start: () => startSample(noise, [o.samples, p.rows, p.cols, 1], sde.priorStd()),
      // Before the corrector and before the predictor, the measured part is replaced.
      step: (x, i) => {
        const t = times.t(i);
        const sigma = sde.std(t);
        const corrected = langevinStep(
          sde,
          score,
          replace(x, sigma, lambda),
          t,
          steps,
          o.snr ?? 0.16,
          1,
          noise,
        )[0];
        return predictorStep(
          sde,
          score,
          replace(corrected, sigma, lambda),
          t,
          steps,
          "reverse-diffusion",
          noise,
        )[1];
      },
      // A final Tweedie denoise, then the lambda = 1 projection onto the measurements.
      finish: (x) => {
        const t = times.t(steps - 1);
        const s = sde.std(t);
        return replace(tf.add(x, tf.mul(score(x, t), s * s)), 0, 1);
      },
    },
    o,
  );
}

export interface LangevinOptions extends ConditionalOptions {
  /** Langevin steps per noise level (steps is the number of levels). */
  stepsPerLevel?: number;
  epsilon?: number;
}

export function langevinSample(sde: Sde, score: ScoreFn, p: PosteriorProblem, o: LangevinOptions): tf.Tensor {
  const steps = o.steps;
  const times = schedule(steps, sde.T, o.eps ?? 1e-3);
  const noise = noiseSource(o.seed ?? 0);
  // The prior term is (1 / sigma_i^2)-smooth and the likelihood term at most ||A||^2 / sigma_i^2,
  // so a_i = epsilon sigma_i^2 / ||A||^2 (||A|| >= 1 assumed) keeps every step stable.
  const epsilon = (o.epsilon ?? 0.2) / Math.max(1, cachedOperatorNorm(p.op) ** 2);
  return runChain(
    {
      steps,
      substeps: o.stepsPerLevel ?? 3,
      start: () => startSample(noise, [o.samples, p.rows, p.cols, 1], sde.priorStd()),
      step: (x, i) => {
        const t = times.t(i);
        const sigma = sde.std(t);
        const a = epsilon * sigma * sigma;
        const w = 1 / (p.noiseSigma * p.noiseSigma + sigma * sigma);
        const grad = perSample(x, (v) => {
          const av = p.op.forward(v);
          for (let j = 0; j < av.length; j++) av[j] = (p.y[j] - av[j]) * w;
          return p.op.adjoint(av);
        });
        return tf.add(
          tf.add(x, tf.mul(tf.add(score(x, t), grad), a)),
          tf.mul(noise(x.shape), Math.sqrt(2 * a)),
        );
      },
      finish: (x) => x,
    },
    o,
  );
}

/**
 * The one chain runner of every sampler, after score_sde's sampling.py (one loop composing small
 * predictor and corrector steps): the time schedule, the start (a sample of the prior, or an
 * estimate plus noise), the loop with its cancel check, the ownership of the chain's tensors and
 * the progress are written here once; dds, song, langevin (conditional.ts) and PC, ODE
 * (unconditional.ts) are step functions over it.
 *
 * Ownership: each step runs in tf.tidy and returns the chain's next state; the runner frees the
 * state it replaced. A chain that is cancelled (its AbortSignal: `signal.throwIfAborted()` before
 * each step) or that fails (a throwing score) frees its current state, and tidy frees what the
 * step had made: no run leaves a tensor behind but its result, which matters in a reused worker.
 */
import { tf } from "../prior/backend.js";
import type { Sde } from "../prior/sde.js";

/** Seeded standard normal noise of a shape. */
export type Noise = (shape: number[]) => tf.Tensor;

/** Seeded standard normal noise; each call draws from its own sub-seed. */
export function noiseSource(seed: number): Noise {
  // Seeds start at 1: TensorFlow.js treats a seed of 0 as "no seed" and draws from Math.random.
  let k = 1;
  return (shape: number[]) => tf.randomNormal(shape, 0, 1, "float32", seed * 1_000_003 + k++);
}

/** Evenly spaced times of a chain, computed per step (nothing the size of the step count). */
export interface Schedule {
  readonly steps: number;
  /** The spacing of two times. */
  readonly h: number;
  t(i: number): number;
}

/**
 * `steps` times from `from` down to `to`. "levels": both ends included (score_sde's
 * linspace(T, eps, N); one step is `from` alone), the noise levels of the PC and posterior
 * samplers. "intervals": [to, from] cut into `steps` steps of h, t_i = from - i h, for an
 * integrator that evaluates both ends t_i and t_i - h of each step (the ODE).
 */
export function schedule(
  steps: number,
  from: number,
  to: number,
  grid: "levels" | "intervals" = "levels",
): Schedule {
  if (grid === "intervals") {
    const h = (from - to) / steps;
    return { steps, h, t: (i) => from - i * h };
  }
  return {
    steps,
    h: steps > 1 ? (from - to) / (steps - 1) : 0,
    t: (i) => (steps > 1 ? from - (i * (from - to)) / (steps - 1) : from),
  };
}

/**
 * The chain's first sample: noise of standard deviation sigma, around an estimate [H, W] when one
 * is given (the same for each sample of the batch; "come closer, diffuse faster").
 */
export function startSample(
  noise: Noise,
  shape: number[],
  sigma: number,
  estimate?: Float32Array,
): tf.Tensor {
  return tf.tidy(() => {
    const x = tf.mul(noise(shape), sigma);
    return estimate ? tf.add(x, tf.tensor(estimate, [1, ...shape.slice(1)])) : x;
  });
}

/** A sample of the prior p_T, the highest noise level, where sampling starts. */
export function priorSample(sde: Sde, shape: number[], noise: Noise): tf.Tensor {
  return startSample(noise, shape, sde.priorStd());
}

/** What a chain's caller gives: progress and cancel. */
export interface ChainOptions {
  /** After each of the sampler's steps: (steps done, steps). */
  onStep?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** The state a chain carries from step to step: its sample (and e.g. the PC sampler's mean). */
export type ChainState = tf.Tensor | tf.Tensor[];

export interface Chain<S extends ChainState> {
  /** The sampler's steps (its progress units). */
  steps: number;
  /** Updates per step (default 1), each preceded by the cancel check: Langevin steps per level. */
  substeps?: number;
  start: () => S;
  /** Step i (0-based), update `sub` of its substeps: the next state from this one. */
  step: (state: S, i: number, sub: number) => S;
  /** The result from the last state (the state's own tensor may be returned). */
  finish: (state: S) => tf.Tensor;
}

const tensorsOf = (s: ChainState): tf.Tensor[] => (Array.isArray(s) ? s : [s]);

/** Frees the tensors of `old` that `kept` does not hold. */
function release(old: ChainState, kept: ChainState | tf.Tensor): void {
  const keep = new Set(tensorsOf(kept).map((t) => t.id));
  for (const t of tensorsOf(old)) if (!keep.has(t.id) && !t.isDisposed) t.dispose();
}

/** Runs a chain to its result; see the ownership note above. */
export function runChain<S extends ChainState>(chain: Chain<S>, o: ChainOptions = {}): tf.Tensor {
  const substeps = chain.substeps ?? 1;
  let state = tf.tidy(chain.start);
  try {
    for (let i = 0; i < chain.steps; i++) {
      for (let sub = 0; sub < substeps; sub++) {
        o.signal?.throwIfAborted();
        const current = state;
        const next = tf.tidy(() => chain.step(current, i, sub));
        release(current, next);
        state = next;
      }
      o.onStep?.(i + 1, chain.steps);
    }
    const current = state;
    const result = tf.tidy(() => chain.finish(current));
    release(current, result);
    return result;
  } catch (err) {
    release(state, []);
    throw err;
  }
}

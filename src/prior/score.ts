/**
 * The score a sampler calls: s(x, t) of a batch [K, H, W, 1] at one time t. scoreFn(prior) is the
 * closure over a loaded network's inference engine (engineFor), written once for the samplers
 * (src/sampling) and the score-based methods (src/recon).
 */
import { tf } from "./backend.js";
import { engineFor, type ScoreEngine } from "./engine.js";
import type { ScoreUNet } from "./unet.js";

export type ScoreFn = (x: tf.Tensor, t: number) => tf.Tensor;

/** Posterior samples per network evaluation, so that its memory does not grow with `samples`. */
const SCORE_BATCH = 4;

/** An engine's score at one t for the whole batch, evaluated SCORE_BATCH samples at a time. */
export function engineScore(engine: ScoreEngine): ScoreFn {
  return (x, t) => {
    const k = x.shape[0]!;
    if (k <= SCORE_BATCH) return engine.score(x as tf.Tensor4D, new Array<number>(k).fill(t));
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < k; i += SCORE_BATCH) {
      const n = Math.min(SCORE_BATCH, k - i);
      const part = tf.slice(x, [i, 0, 0, 0], [n, -1, -1, -1]) as tf.Tensor4D;
      parts.push(engine.score(part, new Array<number>(n).fill(t)));
      part.dispose();
    }
    const out = tf.concat(parts, 0);
    tf.dispose(parts);
    return out;
  };
}

/** The score of a loaded prior's network, on the engine initEngine chose. */
export function scoreFn(prior: { net: ScoreUNet }): ScoreFn {
  return engineScore(engineFor(prior));
}

/** Exact perturbed scores of simple data distributions, for sampler ground truth. */
import { tf } from "../../src/prior/backend.js";
import type { Sde } from "../../src/prior/sde.js";

export interface Component {
  weight: number;
  mean: number;
  std: number;
}

/**
 * Score of p_t for data drawn i.i.d. per element from a 1-D Gaussian mixture: p_t is the mixture of
 * N(m(t) mu_k, m(t)^2 s_k^2 + std(t)^2), and grad log p_t is the posterior-weighted sum of the
 * component scores.
 */
export function mixtureScore(sde: Sde, components: Component[]) {
  return (x: tf.Tensor, t: number) =>
    tf.tidy(() => {
      const m = sde.meanCoef(t),
        s = sde.std(t);
      const logs: tf.Tensor[] = [];
      const scores: tf.Tensor[] = [];
      for (const c of components) {
        const v = m * m * c.std * c.std + s * s;
        const d = tf.sub(x, m * c.mean);
        logs.push(tf.sub(tf.mul(tf.square(d), -0.5 / v), Math.log(Math.sqrt(v)) - Math.log(c.weight)));
        scores.push(tf.mul(d, -1 / v));
      }
      const logStack = tf.stack(logs);
      const post = tf.softmax(tf.transpose(logStack), -1);
      return tf.sum(tf.mul(tf.transpose(post), tf.stack(scores)), 0);
    });
}

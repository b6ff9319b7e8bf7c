/**
 * The intensity scale of the measured object, from the measurements alone (no ground truth): a
 * quantile of |A^H y| / ||A||^2. For MRI this is the zero-filled image; for CT a smoothed
 * backprojection whose level follows the object's. PDHG divides by it so that one lambda means the
 * same for any unit, and the score-based methods bring data to a prior's normalised units with it.
 */
import { cachedOperatorNorm, type LinearOperator } from "./linear-operator.js";

/**
 * The scale: the q-quantile of |A^H y| (element floor(q n) of the sorted magnitudes, the
 * definition of src/image/stats.ts `percentile`) divided by norm^2 (norm: ||A||, by power
 * iteration unless given; 1 for an operator known to be an isometry on what it measures), or 1
 * when that quantile is 0.
 */
export function dataScale(
  op: LinearOperator,
  y: Float32Array,
  q = 0.99,
  norm = cachedOperatorNorm(op),
): number {
  const back = op.adjoint(y);
  const ch = op.input.complex ? 2 : 1;
  const mags = new Float32Array(back.length / ch);
  for (let i = 0; i < mags.length; i++)
    mags[i] = ch === 2 ? Math.hypot(back[2 * i], back[2 * i + 1]) : Math.abs(back[i]);
  mags.sort();
  const level = mags[Math.min(mags.length - 1, Math.floor(q * mags.length))];
  return level > 0 ? level / (norm * norm) : 1;
}

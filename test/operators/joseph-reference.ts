/**
 * The Joseph projector loop of operators/ct.ts as first written (one loop with the bounds checks
 * inside), kept as the reference the optimised projector must reproduce.
 */
import type { ParallelBeamProjector } from "../../operators/ct.js";

function referenceSweep(
  op: ParallelBeamProjector,
  image: Float32Array,
  sino: Float32Array,
  transpose: boolean,
): void {
  const n = op.size,
    d = op.detectors;
  const c0 = (n - 1) / 2,
    t0 = (d - 1) / 2;
  for (let v = 0; v < op.angles.length; v++) {
    const th = op.angles[v];
    const cos = Math.cos(th),
      sin = Math.sin(th);
    const alongCols = Math.abs(sin) >= Math.abs(cos);
    let b: number, w: number;
    if (alongCols) {
      b = cos / sin;
      w = 1 / Math.abs(sin);
    } else {
      b = sin / cos;
      w = 1 / Math.abs(cos);
    }
    for (let j = 0; j < d; j++) {
      const t = j - t0;
      const a = alongCols ? c0 - t / sin - c0 * b : t / cos - c0 * b + c0;
      let lo = 0,
        hi = n - 1;
      if (Math.abs(b) < 1e-12) {
        if (a <= -1 || a >= n) continue;
      } else {
        const i1 = (-1 - a) / b,
          i2 = (n - a) / b;
        lo = Math.max(0, Math.ceil(Math.min(i1, i2) - 1e-9));
        hi = Math.min(n - 1, Math.floor(Math.max(i1, i2) + 1e-9));
      }
      const s = v * d + j;
      let acc = 0;
      const ys = transpose ? sino[s] * w : 0;
      if (transpose && ys === 0) continue;
      for (let i = lo; i <= hi; i++) {
        const p = a + b * i;
        const k = Math.floor(p);
        const f = p - k;
        const i0 = alongCols ? k * n + i : i * n + k;
        const i1 = alongCols ? i0 + n : i0 + 1;
        const in0 = k >= 0 && k < n,
          in1 = k + 1 >= 0 && k + 1 < n;
        if (transpose) {
          if (in0) image[i0] += (1 - f) * ys;
          if (in1) image[i1] += f * ys;
        } else {
          if (in0) acc += (1 - f) * image[i0];
          if (in1) acc += f * image[i1];
        }
      }
      if (!transpose) sino[s] = acc * w;
    }
  }
}

export function referenceForward(op: ParallelBeamProjector, x: Float32Array): Float32Array {
  const out = new Float32Array(op.angles.length * op.detectors);
  referenceSweep(op, x, out, false);
  return out;
}

export function referenceAdjoint(op: ParallelBeamProjector, y: Float32Array): Float32Array {
  const out = new Float32Array(op.size * op.size);
  referenceSweep(op, out, y, true);
  return out;
}

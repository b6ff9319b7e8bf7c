/**
 * SIRT (simultaneous iterative reconstruction technique; Gilbert 1972, in the form of
 * Gregor & Benson 2008): x <- x + C A^T R (y - A x), with R and C the inverse row and column sums
 * of A. It needs a non-negative system matrix (a CT projector), and converges to a weighted
 * least-squares solution; the iteration count acts as the regulariser.
 */
import { domainLength, type LinearOperator } from "../../operators/linear-operator.js";

export interface SirtOptions {
  iterations: number;
  init?: Float32Array;
  nonNegative?: boolean;
  onIteration?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export function sirt(op: LinearOperator, y: Float32Array, options: SirtOptions): Float32Array {
  if (op.input.complex || op.output.complex)
    throw new RangeError("SIRT needs a real, non-negative operator (CT)");
  const n = domainLength(op.input);
  const rowSums = op.forward(new Float32Array(n).fill(1));
  const colSums = op.adjoint(new Float32Array(y.length).fill(1));
  const invRow = rowSums.map((v) => (v > 1e-6 ? 1 / v : 0));
  const invCol = colSums.map((v) => (v > 1e-6 ? 1 / v : 0));
  const x = options.init ? new Float32Array(options.init) : new Float32Array(n);
  const r = new Float32Array(y.length);
  const back = new Float32Array(n);
  for (let it = 0; it < options.iterations; it++) {
    options.signal?.throwIfAborted();
    op.forward(x, r);
    for (let i = 0; i < r.length; i++) r[i] = (y[i] - r[i]) * invRow[i];
    op.adjoint(r, back);
    for (let i = 0; i < n; i++) {
      const v = x[i] + invCol[i] * back[i];
      x[i] = options.nonNegative && v < 0 ? 0 : v;
    }
    options.onIteration?.(it + 1, options.iterations);
  }
  return x;
}

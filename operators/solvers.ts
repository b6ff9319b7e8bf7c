/**
 * Conjugate gradients on the regularised normal equations (A^H A + mu I) x = b, over the real
 * inner product Re<., .> of the operator's input space (Hestenes & Stiefel 1952). Data-consistency
 * steps of the conditional samplers use it: with b = A^H y + mu x0 it pulls x0 towards the
 * measurements, and with mu = 0 it converges to the least-squares solution nearest its start.
 */
import { applyNormal, domainLength, dot, type LinearOperator } from "./linear-operator.js";

export function conjugateGradientNormal(
  op: LinearOperator,
  b: Float32Array,
  x0: Float32Array,
  iterations: number,
  mu = 0,
): Float32Array {
  const n = x0.length;
  const x = new Float32Array(x0);
  // Every buffer up front: an iteration allocates nothing (the measurement-space one is A's
  // output). An operator that returns new arrays instead of writing `out` still works.
  const scratch = new Float32Array(domainLength(op.output));
  let ap: Float32Array = new Float32Array(n);
  /** ap = (A^H A + mu I) v. */
  const normalPlus = (v: Float32Array) => {
    ap = applyNormal(op, v, ap, scratch);
    if (mu) for (let i = 0; i < n; i++) ap[i] += mu * v[i];
  };
  normalPlus(x);
  const r = new Float32Array(n);
  let rr = 0;
  for (let i = 0; i < n; i++) {
    r[i] = b[i] - ap[i];
    rr += r[i] * r[i];
  }
  const p = new Float32Array(r);
  const stop = 1e-12 * Math.max(dot(b, b), 1e-30);
  for (let k = 0; k < iterations && rr > stop; k++) {
    normalPlus(p);
    const alpha = rr / dot(p, ap);
    // x += alpha p and r -= alpha ap, with <r, r> of the stored (float32) residual.
    let next = 0;
    for (let i = 0; i < n; i++) {
      x[i] += alpha * p[i];
      r[i] -= alpha * ap[i];
      next += r[i] * r[i];
    }
    const beta = next / rr;
    rr = next;
    for (let i = 0; i < n; i++) p[i] = r[i] + beta * p[i];
  }
  return x;
}

/**
 * The pseudo-inverse A^+ y = (A^H A)^+ A^H y: the least-squares solution of least norm, by
 * `iterations` CG steps from 0 (deepinv's A_dagger). Exact in one step when A^H A is a projection
 * (MRI: F^H M F); for CT the least-squares view completion, accurate to the iteration count.
 */
export function pseudoInverse(op: LinearOperator, y: Float32Array, iterations: number): Float32Array {
  return conjugateGradientNormal(op, op.adjoint(y), new Float32Array(domainLength(op.input)), iterations);
}

/**
 * The l2 proximal step towards the measurements (deepinv's prox_l2), given A^H y:
 *   argmin_x 1/2 ||A x - y||^2 + mu / 2 ||x - z||^2,
 * i.e. (A^H A + mu I) x = A^H y + mu z, by `iterations` CG steps started at z. mu = 0 is the hard
 * data-consistency limit: the least-squares solution nearest z (to the iteration count).
 */
export function proxL2(
  op: LinearOperator,
  aty: Float32Array,
  z: Float32Array,
  mu: number,
  iterations: number,
): Float32Array {
  if (mu <= 0) return conjugateGradientNormal(op, aty, z, iterations);
  const b = new Float32Array(aty.length);
  for (let i = 0; i < b.length; i++) b[i] = aty[i] + mu * z[i];
  return conjugateGradientNormal(op, b, z, iterations, mu);
}

/**
 * A complex-input operator restricted to real inputs: x -> A x, with adjoint y -> Re(A^H y).
 * Priors over magnitude images are real, while MRI's A takes complex images.
 */
export function realInputView(op: LinearOperator): LinearOperator {
  if (!op.input.complex) return op;
  const n = op.input.shape.reduce((a, b) => a * b, 1);
  return {
    name: `${op.name} (real input)`,
    input: { shape: op.input.shape, complex: false },
    output: op.output,
    forward(x, out) {
      const z = new Float32Array(2 * n);
      for (let i = 0; i < n; i++) z[2 * i] = x[i];
      return op.forward(z, out);
    },
    adjoint(y, out = new Float32Array(n)) {
      const z = op.adjoint(y);
      for (let i = 0; i < n; i++) out[i] = z[2 * i];
      return out;
    },
  };
}

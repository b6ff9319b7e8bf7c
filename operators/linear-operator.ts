/**
 * The one operator interface of scorerecon (after deepinv's `physics`): every forward model is a
 * linear map A between Float32Array vector spaces, with its adjoint A^H. Complex vectors are
 * interleaved re/im, and the inner product is always the real one, Re<a, b>, which makes the
 * adjoint of a complex-linear map the usual conjugate transpose.
 */
export type Shape = readonly number[];

export interface Domain {
  /** Logical shape, e.g. [rows, cols] for an image, [views, detectors] for a sinogram. */
  readonly shape: Shape;
  /** Complex domains store 2 floats per element (interleaved re/im). */
  readonly complex: boolean;
}

export interface LinearOperator {
  readonly name: string;
  readonly input: Domain;
  readonly output: Domain;
  /** y = A x. When `out` is given it is written and returned (no allocation). */
  forward(x: Float32Array, out?: Float32Array): Float32Array;
  /** x = A^H y. */
  adjoint(y: Float32Array, out?: Float32Array): Float32Array;
  /** A^H A x; operators with a cheaper closed form (e.g. MRI: F^H M F) override the composition. */
  normal?(x: Float32Array, out?: Float32Array): Float32Array;
}

/** Number of floats a vector of this domain occupies. */
export function domainLength(d: Domain): number {
  let n = d.complex ? 2 : 1;
  for (const s of d.shape) n *= s;
  return n;
}

/** A^H A x (into `out` when given); `scratch`, of A's output length, holds A x when given. */
export function applyNormal(
  op: LinearOperator,
  x: Float32Array,
  out?: Float32Array,
  scratch?: Float32Array,
): Float32Array {
  if (op.normal) return op.normal(x, out);
  return op.adjoint(op.forward(x, scratch), out);
}

/** Real inner product Re<a, b>, accumulated in double precision. */
export function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`dot: length ${a.length} != ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm2(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

/**
 * Dot-product (adjoint) test: returns the relative mismatch |<Ax, y> - <x, A^H y>| / |<Ax, y>|
 * for the given vectors. A correct adjoint gives float rounding only (~1e-7 per term).
 */
export function adjointMismatch(op: LinearOperator, x: Float32Array, y: Float32Array): number {
  const lhs = dot(op.forward(x), y);
  const rhs = dot(x, op.adjoint(y));
  return Math.abs(lhs - rhs) / Math.max(Math.abs(lhs), Math.abs(rhs), Number.MIN_VALUE);
}

/**
 * Largest singular value of A by power iteration on A^H A (seeded start vector), used for
 * step sizes of FISTA/PDHG and SIRT scaling.
 */
export function operatorNorm(op: LinearOperator, iterations = 30, seed = 0): number {
  const n = domainLength(op.input);
  let x: Float32Array = new Float32Array(n);
  let s = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  let lambda = 0;
  for (let k = 0; k < iterations; k++) {
    const nx = norm2(x);
    if (nx === 0) return 0;
    for (let i = 0; i < n; i++) x[i] /= nx;
    const ax = applyNormal(op, x);
    lambda = Math.sqrt(norm2(ax));
    x = ax;
  }
  return lambda;
}

const norms = new WeakMap<LinearOperator, number>();
/** ||A|| by power iteration (20 iterations), computed once per operator object. */
export function cachedOperatorNorm(op: LinearOperator): number {
  let n = norms.get(op);
  if (n === undefined) {
    n = operatorNorm(op, 20);
    norms.set(op, n);
  }
  return n;
}

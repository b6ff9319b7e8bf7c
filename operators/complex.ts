/** Interleaved complex (re, im) helpers. */

/** Real image -> complex with zero imaginary part. */
export function realToComplex(
  x: Float32Array,
  out: Float32Array = new Float32Array(2 * x.length),
): Float32Array {
  for (let i = 0; i < x.length; i++) {
    out[2 * i] = x[i];
    out[2 * i + 1] = 0;
  }
  return out;
}

/** |z| per element. */
export function magnitude(
  z: Float32Array,
  out: Float32Array = new Float32Array(z.length >> 1),
): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = Math.hypot(z[2 * i], z[2 * i + 1]);
  return out;
}

/** Real part per element. */
export function realPart(z: Float32Array, out: Float32Array = new Float32Array(z.length >> 1)): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = z[2 * i];
  return out;
}

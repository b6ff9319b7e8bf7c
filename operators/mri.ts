/**
 * Single-coil Cartesian MRI: A = M F, with F the centred orthonormal 2-D DFT (operators/fft.ts)
 * and M a [rows, cols] sampling mask. Image and k-space are both complex [rows, cols]; unsampled
 * k-space positions are zero (the fastMRI / BART convention of a full-size masked k-space).
 * A^H = F^H M, and A^H A = F^H M^2 F.
 */
import { fft2c, ifft2c } from "./fft.js";
import type { LinearOperator } from "./linear-operator.js";
import { createRng } from "./random.js";

export class MriCartesianOperator implements LinearOperator {
  readonly name = "mri-cartesian";
  readonly input;
  readonly output;

  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly mask: ArrayLike<number>,
  ) {
    if (mask.length !== rows * cols)
      throw new RangeError(`mask has ${mask.length} entries, image is ${rows}x${cols}`);
    this.input = { shape: [rows, cols], complex: true } as const;
    this.output = { shape: [rows, cols], complex: true } as const;
  }

  forward(x: Float32Array, out?: Float32Array): Float32Array {
    const k = fft2c(x, this.rows, this.cols, -1, out);
    this.applyMask(k, 1);
    return k;
  }

  adjoint(y: Float32Array, out?: Float32Array): Float32Array {
    const masked = new Float32Array(y);
    this.applyMask(masked, 1);
    return ifft2c(masked, this.rows, this.cols, out);
  }

  normal(x: Float32Array, out?: Float32Array): Float32Array {
    const k = fft2c(x, this.rows, this.cols, -1);
    this.applyMask(k, 2);
    return ifft2c(k, this.rows, this.cols, out);
  }

  private applyMask(k: Float32Array, power: 1 | 2): void {
    const m = this.mask;
    for (let i = 0; i < m.length; i++) {
      const w = power === 1 ? m[i] : m[i] * m[i];
      if (w !== 1) {
        k[2 * i] *= w;
        k[2 * i + 1] *= w;
      }
    }
  }
}

/**
 * Adds complex white Gaussian noise to the sampled k-space positions: sigma is the standard
 * deviation of each of the real and imaginary parts (as in deepinv's GaussianNoise on complex
 * data). Returns a new array; the same seed gives the same bytes.
 */
export function addKspaceNoise(
  kspace: Float32Array,
  mask: ArrayLike<number>,
  sigma: number,
  seed: number,
): Float32Array {
  const out = new Float32Array(kspace);
  if (sigma <= 0) return out;
  const rng = createRng(seed);
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    out[2 * i] += sigma * rng.normal();
    out[2 * i + 1] += sigma * rng.normal();
  }
  return out;
}

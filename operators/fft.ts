/**
 * Discrete Fourier transforms on fft.js. fft.js only handles powers of two. A length n = m 2^k
 * with a small odd factor m <= 15 (320 = 5 x 64, 240 = 15 x 16, 384 = 3 x 128) takes one
 * Cooley-Tukey step (m transforms of length 2^k by fft.js, twiddles, then 2^k DFTs of length m);
 * any other length goes through Bluestein's chirp-z algorithm (Bluestein 1970): an exact DFT of
 * length n computed as a circular convolution of power-of-two length >= 2n - 1. Measured k-space is
 * never padded.
 *
 * The 2-D transform follows the imaging convention (fastMRI `fft2c`, BART `fftc`):
 *   fft2c(x)  = fftshift(fft2(ifftshift(x), norm="ortho"))
 *   ifft2c(k) = fftshift(ifft2(ifftshift(k), norm="ortho"))
 * so the DC sample sits at index floor(n/2) on each axis and the transform is unitary.
 */
import FFT from "fft.js";

/** In-place unnormalised DFT of one complex line of length n, sign -1 (forward) or +1 (inverse). */
export class Fft1d {
  readonly n: number;
  private readonly pow2?: FFT;
  private readonly buf?: Float64Array;
  private readonly out?: Float64Array;
  // Bluestein state: chirp w_k = exp(-i pi k^2 / n) and the FFT of its conjugate, padded to m.
  private readonly m: number = 0;
  private readonly chirp?: Float64Array;
  private readonly chirpHat?: Float64Array;
  // Mixed-radix state: odd factor, twiddles W_n^(j1 k2) [m x p] and the m-point DFT matrix.
  private readonly radix: number = 0;
  private readonly twiddle?: Float64Array;
  private readonly dftM?: Float64Array;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`FFT length must be a positive integer, got ${n}`);
    this.n = n;
    if (n === 1) return;
    const isPow2 = (n & (n - 1)) === 0;
    if (isPow2) {
      this.pow2 = new FFT(n);
      this.buf = new Float64Array(2 * n);
      this.out = new Float64Array(2 * n);
      return;
    }
    let odd = n;
    while (odd % 2 === 0) odd /= 2;
    if (odd <= 15 && n / odd >= 2) {
      const p = n / odd;
      this.radix = odd;
      this.pow2 = new FFT(p);
      this.buf = new Float64Array(2 * n);
      this.out = new Float64Array(2 * n);
      this.twiddle = new Float64Array(2 * odd * p);
      for (let j1 = 0; j1 < odd; j1++)
        for (let k2 = 0; k2 < p; k2++) {
          const a = (-2 * Math.PI * ((j1 * k2) % n)) / n;
          this.twiddle[2 * (j1 * p + k2)] = Math.cos(a);
          this.twiddle[2 * (j1 * p + k2) + 1] = Math.sin(a);
        }
      this.dftM = new Float64Array(2 * odd * odd);
      for (let j = 0; j < odd; j++)
        for (let k = 0; k < odd; k++) {
          const a = (-2 * Math.PI * ((j * k) % odd)) / odd;
          this.dftM[2 * (j * odd + k)] = Math.cos(a);
          this.dftM[2 * (j * odd + k) + 1] = Math.sin(a);
        }
      return;
    }
    let m = 2;
    while (m < 2 * n - 1) m *= 2;
    this.m = m;
    this.pow2 = new FFT(m);
    this.buf = new Float64Array(2 * m);
    this.out = new Float64Array(2 * m);
    const chirp = new Float64Array(2 * n);
    for (let k = 0; k < n; k++) {
      // k^2 mod 2n keeps the angle argument small and exact for large k.
      const a = (Math.PI * ((k * k) % (2 * n))) / n;
      chirp[2 * k] = Math.cos(a);
      chirp[2 * k + 1] = -Math.sin(a);
    }
    const b = new Float64Array(2 * m);
    b[0] = chirp[0];
    b[1] = -chirp[1];
    for (let k = 1; k < n; k++) {
      b[2 * k] = b[2 * (m - k)] = chirp[2 * k];
      b[2 * k + 1] = b[2 * (m - k) + 1] = -chirp[2 * k + 1];
    }
    const bHat = new Float64Array(2 * m);
    this.pow2.transform(bHat, b);
    this.chirp = chirp;
    this.chirpHat = bHat;
  }

  /**
   * Transforms `line` (interleaved complex, length 2n) in place.
   * sign -1: X_k = sum_j x_j e^{-2 pi i jk/n};  sign +1: the same with +i (no 1/n factor).
   */
  transform(line: Float64Array, sign: -1 | 1): void {
    const n = this.n;
    if (n === 1) return;
    const fft = this.pow2!;
    const buf = this.buf!;
    const out = this.out!;
    // The inverse is the conjugate of the forward transform of the conjugate.
    if (sign === 1) for (let k = 1; k < 2 * n; k += 2) line[k] = -line[k];
    if (this.radix) this.mixedRadix(line);
    else if (this.m === 0) {
      buf.set(line);
      fft.transform(out, buf);
      line.set(out.subarray(0, 2 * n));
    } else {
      const m = this.m;
      const w = this.chirp!;
      const bHat = this.chirpHat!;
      buf.fill(0);
      for (let k = 0; k < n; k++) {
        const xr = line[2 * k],
          xi = line[2 * k + 1];
        const wr = w[2 * k],
          wi = w[2 * k + 1];
        buf[2 * k] = xr * wr - xi * wi;
        buf[2 * k + 1] = xr * wi + xi * wr;
      }
      fft.transform(out, buf);
      for (let k = 0; k < m; k++) {
        const ar = out[2 * k],
          ai = out[2 * k + 1];
        const br = bHat[2 * k],
          bi = bHat[2 * k + 1];
        out[2 * k] = ar * br - ai * bi;
        out[2 * k + 1] = ar * bi + ai * br;
      }
      // Unnormalised inverse of length m via conjugation: ifft(z) * m = conj(fft(conj(z))).
      for (let k = 1; k < 2 * m; k += 2) out[k] = -out[k];
      fft.transform(buf, out);
      const inv = 1 / m;
      for (let k = 0; k < n; k++) {
        const cr = buf[2 * k] * inv,
          ci = -buf[2 * k + 1] * inv;
        const wr = w[2 * k],
          wi = w[2 * k + 1];
        line[2 * k] = cr * wr - ci * wi;
        line[2 * k + 1] = cr * wi + ci * wr;
      }
    }
    if (sign === 1) for (let k = 1; k < 2 * n; k += 2) line[k] = -line[k];
  }

  /**
   * Forward DFT for n = m p (p a power of two), decimation in time: with j = j1 + m j2 and
   * k = k2 + p k1, X[k] = sum_j1 W_m^(j1 k1) W_n^(j1 k2) Y_j1[k2], where Y_j1 is the p-point DFT
   * of x[j1 + m j2].
   */
  private mixedRadix(line: Float64Array): void {
    const m = this.radix,
      n = this.n,
      p = n / m;
    const fft = this.pow2!;
    const buf = this.buf!;
    const out = this.out!;
    const tw = this.twiddle!;
    const w = this.dftM!;
    const sub = buf.subarray(0, 2 * p);
    for (let j1 = 0; j1 < m; j1++) {
      for (let j2 = 0; j2 < p; j2++) {
        sub[2 * j2] = line[2 * (j1 + m * j2)];
        sub[2 * j2 + 1] = line[2 * (j1 + m * j2) + 1];
      }
      const y = out.subarray(2 * j1 * p, 2 * (j1 + 1) * p);
      fft.transform(y, sub);
      for (let k2 = 0; k2 < p; k2++) {
        const yr = y[2 * k2],
          yi = y[2 * k2 + 1];
        const tr = tw[2 * (j1 * p + k2)],
          ti = tw[2 * (j1 * p + k2) + 1];
        y[2 * k2] = yr * tr - yi * ti;
        y[2 * k2 + 1] = yr * ti + yi * tr;
      }
    }
    for (let k2 = 0; k2 < p; k2++)
      for (let k1 = 0; k1 < m; k1++) {
        let re = 0,
          im = 0;
        for (let j1 = 0; j1 < m; j1++) {
          const yr = out[2 * (j1 * p + k2)],
            yi = out[2 * (j1 * p + k2) + 1];
          const cr = w[2 * (j1 * m + k1)],
            ci = w[2 * (j1 * m + k1) + 1];
          re += yr * cr - yi * ci;
          im += yr * ci + yi * cr;
        }
        line[2 * (k2 + p * k1)] = re;
        line[2 * (k2 + p * k1) + 1] = im;
      }
  }
}

const plans = new Map<number, Fft1d>();

/** Cached plan for length n (plans hold only tables, so sharing them is safe). */
export function fftPlan(n: number): Fft1d {
  let p = plans.get(n);
  if (!p) {
    p = new Fft1d(n);
    plans.set(n, p);
  }
  return p;
}

// Reused double-precision work buffers (one 2-D transform runs at a time: JS is single-threaded
// and fft2c never yields), so an iterative reconstruction does not allocate per transform.
let work64 = new Float64Array(0);
let line64 = new Float64Array(0);
function scratch(n: number): Float64Array {
  if (work64.length < n) work64 = new Float64Array(n);
  return work64.subarray(0, n);
}
function scratchLine(n: number): Float64Array {
  if (line64.length < n) line64 = new Float64Array(n);
  return line64.subarray(0, n);
}

/**
 * Centred orthonormal 2-D DFT of a complex [rows, cols] image (interleaved re/im).
 * sign -1 is fft2c, +1 is ifft2c. `out` may be the same array as `x`.
 */
export function fft2c(
  x: Float32Array,
  rows: number,
  cols: number,
  sign: -1 | 1 = -1,
  out: Float32Array = new Float32Array(2 * rows * cols),
): Float32Array {
  if (x.length !== 2 * rows * cols)
    throw new RangeError(`fft2c: expected ${2 * rows * cols} floats for ${rows}x${cols}, got ${x.length}`);
  const rowPlan = fftPlan(cols);
  const colPlan = fftPlan(rows);
  const work = scratch(2 * rows * cols);
  // ifftshift on input: element at (r, c) moves to ((r - floor(R/2)) mod R, ...); equivalently
  // work[r'] = x[(r' + floor(R/2)) mod R].
  const hr = rows >> 1,
    hc = cols >> 1;
  for (let r = 0; r < rows; r++) {
    const sr = (r + hr) % rows;
    for (let c = 0; c < cols; c++) {
      const sc = (c + hc) % cols;
      const s = 2 * (sr * cols + sc),
        d = 2 * (r * cols + c);
      work[d] = x[s];
      work[d + 1] = x[s + 1];
    }
  }
  for (let r = 0; r < rows; r++) rowPlan.transform(work.subarray(2 * r * cols, 2 * (r + 1) * cols), sign);
  const line = scratchLine(2 * rows);
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) {
      line[2 * r] = work[2 * (r * cols + c)];
      line[2 * r + 1] = work[2 * (r * cols + c) + 1];
    }
    colPlan.transform(line, sign);
    for (let r = 0; r < rows; r++) {
      work[2 * (r * cols + c)] = line[2 * r];
      work[2 * (r * cols + c) + 1] = line[2 * r + 1];
    }
  }
  // fftshift on output: out[r] = work[(r - floor(R/2)) mod R] = work[(r + ceil(R/2)) mod R].
  const scale = 1 / Math.sqrt(rows * cols);
  const cr = rows - hr,
    cc = cols - hc;
  for (let r = 0; r < rows; r++) {
    const sr = (r + cr) % rows;
    for (let c = 0; c < cols; c++) {
      const sc = (c + cc) % cols;
      const s = 2 * (sr * cols + sc),
        d = 2 * (r * cols + c);
      out[d] = work[s] * scale;
      out[d + 1] = work[s + 1] * scale;
    }
  }
  return out;
}

export const ifft2c = (k: Float32Array, rows: number, cols: number, out?: Float32Array): Float32Array =>
  fft2c(k, rows, cols, 1, out);

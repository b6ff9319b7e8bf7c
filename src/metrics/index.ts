/**
 * Image quality metrics, each with one fixed definition (cf. fastMRI's evaluate.py):
 * - psnr(ref, test, R) = 10 log10(R^2 / MSE), as scikit-image's peak_signal_noise_ratio with
 *   data_range = R. The data range is always explicit.
 * - nmse(ref, test) = ||ref - test||^2 / ||ref||^2 (fastMRI).
 * - ssim(ref, test, { dataRange, variant }):
 *   "wang" (default): Wang, Bovik, Sheikh & Simoncelli 2004 — Gaussian window sigma 1.5 truncated
 *   at 3.5 sigma (11 x 11), K1 = 0.01, K2 = 0.03, population covariance; equal to scikit-image's
 *   structural_similarity(ref, test, data_range=R, gaussian_weights=True, sigma=1.5,
 *   use_sample_covariance=False).
 *   "fastmri": fastMRI's call, structural_similarity(gt, pred, data_range=R) with scikit-image's
 *   defaults — 7 x 7 uniform window, sample covariance N/(N-1).
 *   Both average the SSIM map over the image cropped by (window - 1)/2 on every side, as
 *   scikit-image does, so no boundary padding enters the result.
 * All accumulate in double precision.
 */
import type { Image2D } from "../image/volume.js";

export type SsimVariant = "wang" | "fastmri";

function check(ref: Image2D, test: Image2D): void {
  if (ref.rows !== test.rows || ref.cols !== test.cols || ref.data.length !== test.data.length)
    throw new RangeError(`images differ in size: ${ref.rows}x${ref.cols} vs ${test.rows}x${test.cols}`);
}

export function mse(ref: Image2D, test: Image2D): number {
  check(ref, test);
  let s = 0;
  for (let i = 0; i < ref.data.length; i++) s += (ref.data[i] - test.data[i]) ** 2;
  return s / ref.data.length;
}

export function psnr(ref: Image2D, test: Image2D, dataRange: number): number {
  if (!(dataRange > 0)) throw new RangeError(`PSNR needs a positive data range, got ${dataRange}`);
  const e = mse(ref, test);
  return e === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / e);
}

export function nmse(ref: Image2D, test: Image2D): number {
  check(ref, test);
  let num = 0,
    den = 0;
  for (let i = 0; i < ref.data.length; i++) {
    num += (ref.data[i] - test.data[i]) ** 2;
    den += ref.data[i] ** 2;
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}

/** Normalised 1-D window and its radius. */
function window1d(variant: SsimVariant): Float64Array {
  if (variant === "fastmri") return new Float64Array(7).fill(1 / 7);
  const sigma = 1.5;
  const radius = Math.trunc(3.5 * sigma + 0.5);
  const w = Float64Array.from({ length: 2 * radius + 1 }, (_, i) =>
    Math.exp(-0.5 * ((i - radius) / sigma) ** 2),
  );
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
}

/**
 * Separable filtering evaluated only where the whole window is inside the image (the cropped
 * region): output [rows - 2r, cols - 2r].
 */
function filterValid(x: Float64Array, rows: number, cols: number, w: Float64Array): Float64Array {
  const r = (w.length - 1) / 2;
  const oc = cols - 2 * r,
    or = rows - 2 * r;
  const tmp = new Float64Array(rows * oc);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < oc; j++) {
      let s = 0;
      const base = i * cols + j;
      for (let k = 0; k < w.length; k++) s += w[k] * x[base + k];
      tmp[i * oc + j] = s;
    }
  const out = new Float64Array(or * oc);
  for (let i = 0; i < or; i++)
    for (let j = 0; j < oc; j++) {
      let s = 0;
      for (let k = 0; k < w.length; k++) s += w[k] * tmp[(i + k) * oc + j];
      out[i * oc + j] = s;
    }
  return out;
}

export interface SsimOptions {
  dataRange: number;
  variant?: SsimVariant;
}

/** SSIM map over the cropped region [rows - 2r, cols - 2r], r the window radius. */
export function ssimMap(
  ref: Image2D,
  test: Image2D,
  options: SsimOptions,
): { map: Float64Array; rows: number; cols: number } {
  check(ref, test);
  const { dataRange } = options;
  if (!(dataRange > 0)) throw new RangeError(`SSIM needs a positive data range, got ${dataRange}`);
  const variant = options.variant ?? "wang";
  const w = window1d(variant);
  const r = (w.length - 1) / 2;
  const { rows, cols } = ref;
  if (rows < w.length || cols < w.length)
    throw new RangeError(
      `SSIM (${variant}) needs images of at least ${w.length}x${w.length}, got ${rows}x${cols}`,
    );
  const n = rows * cols;
  const x = Float64Array.from(ref.data),
    y = Float64Array.from(test.data);
  const xx = new Float64Array(n),
    yy = new Float64Array(n),
    xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const [ux, uy, uxx, uyy, uxy] = [x, y, xx, yy, xy].map((a) => filterValid(a, rows, cols, w));
  const np = w.length * w.length;
  const covNorm = variant === "fastmri" ? np / (np - 1) : 1;
  const c1 = (0.01 * dataRange) ** 2,
    c2 = (0.03 * dataRange) ** 2;
  const map = new Float64Array(ux.length);
  for (let i = 0; i < map.length; i++) {
    const vx = covNorm * (uxx[i] - ux[i] * ux[i]);
    const vy = covNorm * (uyy[i] - uy[i] * uy[i]);
    const vxy = covNorm * (uxy[i] - ux[i] * uy[i]);
    map[i] =
      ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
  }
  return { map, rows: rows - 2 * r, cols: cols - 2 * r };
}

export function ssim(ref: Image2D, test: Image2D, options: SsimOptions): number {
  const { map } = ssimMap(ref, test, options);
  let s = 0;
  for (const v of map) s += v;
  return s / map.length;
}

/**
 * Image quality metrics, each with one fixed definition (cf. fastMRI's evaluate.py, whose
 * metrics are stated once and never vary). Images are `Image2D`: row-major Float32Array
 * [rows, cols]. The first argument is always the reference (ground truth).
 *
 * - `psnr(ref, test, R)` = 10 log10(R^2 / MSE), MSE the mean of (ref - test)^2 over all pixels:
 *   scikit-image's `peak_signal_noise_ratio(ref, test, data_range=R)`. The data range R is
 *   always explicit, never inferred from the images (fastMRI passes R = max(ref) of the volume;
 *   callers who want its numbers pass the same). Identical images give +Infinity.
 * - `nmse(ref, test)` = ||ref - test||^2 / ||ref||^2, the fastMRI definition (normalised by the
 *   reference only, so not symmetric). An all-zero reference gives 0 if test is also all zero,
 *   else +Infinity.
 * - `ssim(ref, test, { dataRange: R, variant })`, the mean of the SSIM map of Wang, Bovik,
 *   Sheikh & Simoncelli, "Image quality assessment: from error visibility to structural
 *   similarity", IEEE TIP 13(4), 2004, with C1 = (0.01 R)^2, C2 = (0.03 R)^2:
 *   - "wang" (the default): Gaussian window, sigma 1.5, truncated at 3.5 sigma (radius 5,
 *     11 x 11, weights normalised to sum 1), population (co)variances. Equal to scikit-image's
 *     `structural_similarity(ref, test, data_range=R, gaussian_weights=True, sigma=1.5,
 *     use_sample_covariance=False)`.
 *   - "fastmri": how fastMRI's evaluate.py calls it, `structural_similarity(gt, pred,
 *     data_range=R)` with scikit-image's defaults: 7 x 7 uniform window, sample (co)variances
 *     (scaled by N / (N - 1), N = 49). fastMRI averages this over the slices of a volume.
 *   Both follow scikit-image's algorithm: local means of x, y, x^2, y^2, xy by separable
 *   filtering (scipy.ndimage, rows then columns), then the mean of the SSIM map over the image
 *   cropped by r = (window - 1) / 2 on every side. scipy filters with mode='reflect', but every
 *   window centred in the cropped region lies wholly inside the image, so the boundary rule
 *   never reaches the result and only that region is computed here. Images smaller than the
 *   window (11 x 11 Wang, 7 x 7 fastMRI) are refused, as scikit-image refuses them.
 * All sums are in double precision. scikit-image keeps float32 inputs in float32; our numbers
 * equal its result for the same pixels cast to float64 (test/fixtures/metrics: within 1e-10),
 * and differ from its float32 path by about 1e-6, more where a large offset makes
 * E[x^2] - E[x]^2 cancel (7e-4 for values near 1000 with R = 25).
 *
 * Mismatched sizes, data that does not fill rows x cols, and a data range that is not a positive
 * finite number throw RangeError.
 */
import { UserError } from "../errors.js";
import type { Image2D, Volume } from "../image/volume.js";

export type SsimVariant = "wang" | "fastmri";

export interface SsimOptions {
  /** R in C1 = (K1 R)^2, C2 = (K2 R)^2: the range the pixel values can span (e.g. max - min). */
  dataRange: number;
  /** "wang" (default, Gaussian 11 x 11) or "fastmri" (uniform 7 x 7, sample covariance). */
  variant?: SsimVariant;
}

/** The SSIM map over the cropped region: rows - 2 pad by cols - 2 pad, row-major. */
export interface SsimMap {
  readonly rows: number;
  readonly cols: number;
  /** Pixels cropped from every side of the image: (window - 1) / 2. */
  readonly pad: number;
  readonly map: Float64Array;
}

function checkImage(im: Image2D, which: string, metric: string): void {
  const { rows, cols } = im;
  if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows > 0 && cols > 0))
    throw new RangeError(`${metric}: ${which} image has invalid size ${rows}x${cols}`);
  if (im.data.length !== rows * cols)
    throw new RangeError(
      `${metric}: ${which} image has ${im.data.length} values, expected ${rows}x${cols} = ${rows * cols}`,
    );
}

function checkPair(ref: Image2D, test: Image2D, metric: string): void {
  checkImage(ref, "reference", metric);
  checkImage(test, "test", metric);
  if (ref.rows !== test.rows || ref.cols !== test.cols)
    throw new RangeError(
      `${metric}: images differ in size: reference ${ref.rows}x${ref.cols}, test ${test.rows}x${test.cols}`,
    );
}

function checkDataRange(dataRange: number, metric: string): void {
  if (!(Number.isFinite(dataRange) && dataRange > 0))
    throw new RangeError(`${metric} needs a positive, finite data range, got ${dataRange}`);
}

/** Mean squared error, mean of (ref - test)^2. */
export function mse(ref: Image2D, test: Image2D): number {
  checkPair(ref, test, "mse");
  return squaredError(ref.data, test.data) / ref.data.length;
}

function squaredError(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

/** 10 log10(R^2 / MSE) in dB, as scikit-image's peak_signal_noise_ratio; Infinity if equal. */
export function psnr(ref: Image2D, test: Image2D, dataRange: number): number {
  checkPair(ref, test, "psnr");
  checkDataRange(dataRange, "psnr");
  const e = squaredError(ref.data, test.data) / ref.data.length;
  return e === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / e);
}

/** ||ref - test||^2 / ||ref||^2 (fastMRI). */
export function nmse(ref: Image2D, test: Image2D): number {
  checkPair(ref, test, "nmse");
  const num = squaredError(ref.data, test.data);
  let den = 0;
  for (const v of ref.data) den += v * v;
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}

/**
 * The normalised 1-D window. Gaussian weights as scipy.ndimage.gaussian_filter makes them
 * (radius int(truncate sigma + 0.5), exp(-x^2 / (2 sigma^2)) / sum), which is also the window
 * size scikit-image crops by (2 int(3.5 sigma + 0.5) + 1 = 11).
 */
function window1d(variant: SsimVariant): Float64Array {
  if (variant === "fastmri") return new Float64Array(7).fill(1 / 7);
  const sigma = 1.5,
    truncate = 3.5;
  const radius = Math.trunc(truncate * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = 0; i < w.length; i++) {
    const x = i - radius;
    w[i] = Math.exp((-0.5 / (sigma * sigma)) * x * x);
    sum += w[i];
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/** The side of the SSIM window (11 for "wang", 7 for "fastmri"): images need at least this many rows and columns. */
export function ssimWindowSize(variant: SsimVariant = "wang"): number {
  return window1d(variant).length;
}

/**
 * SSIM at every pixel whose window lies inside the image: the region scikit-image averages.
 * One output row at a time: filter the window's rows down each column (scipy's axis 0 first),
 * then along the row, so only five row buffers are held.
 */
export function ssimMap(ref: Image2D, test: Image2D, options: SsimOptions): SsimMap {
  checkPair(ref, test, "ssim");
  const { dataRange } = options;
  checkDataRange(dataRange, "ssim");
  const variant = options.variant ?? "wang";
  if (variant !== "wang" && variant !== "fastmri")
    throw new RangeError(`ssim: unknown variant "${String(variant)}" (wang or fastmri)`);
  const w = window1d(variant);
  const k = w.length,
    pad = (k - 1) / 2;
  const { rows, cols } = ref;
  if (rows < k || cols < k)
    throw new RangeError(`ssim (${variant}) needs images of at least ${k}x${k}, got ${rows}x${cols}`);

  const x = ref.data,
    y = test.data;
  const outRows = rows - 2 * pad,
    outCols = cols - 2 * pad;
  // Sample covariance for fastMRI (skimage's use_sample_covariance=True): N / (N - 1).
  const np = k * k;
  const covNorm = variant === "fastmri" ? np / (np - 1) : 1;
  const c1 = (0.01 * dataRange) ** 2,
    c2 = (0.03 * dataRange) ** 2;

  const mx = new Float64Array(cols),
    my = new Float64Array(cols),
    mxx = new Float64Array(cols),
    myy = new Float64Array(cols),
    mxy = new Float64Array(cols);
  const map = new Float64Array(outRows * outCols);
  for (let i = 0; i < outRows; i++) {
    for (let j = 0; j < cols; j++) {
      // Symmetric window: pair the taps t and k-1-t about the centre, as scipy's correlate1d does.
      const lo0 = i * cols + j,
        mid = lo0 + pad * cols;
      const wc = w[pad],
        am = x[mid],
        bm = y[mid];
      let sx = wc * am,
        sy = wc * bm,
        sxx = wc * (am * am),
        syy = wc * (bm * bm),
        sxy = wc * (am * bm);
      for (let t = 0, lo = lo0, hi = lo0 + (k - 1) * cols; t < pad; t++, lo += cols, hi -= cols) {
        const wt = w[t],
          a = x[lo],
          b = y[lo],
          c = x[hi],
          d = y[hi];
        // Products of float32 values are exact in float64, as scipy's filter of im1 * im1 sees them.
        sx += wt * (a + c);
        sy += wt * (b + d);
        sxx += wt * (a * a + c * c);
        syy += wt * (b * b + d * d);
        sxy += wt * (a * b + c * d);
      }
      mx[j] = sx;
      my[j] = sy;
      mxx[j] = sxx;
      myy[j] = syy;
      mxy[j] = sxy;
    }
    const rowOut = i * outCols;
    for (let j = 0; j < outCols; j++) {
      const m = j + pad,
        wc = w[pad];
      let ux = wc * mx[m],
        uy = wc * my[m],
        uxx = wc * mxx[m],
        uyy = wc * myy[m],
        uxy = wc * mxy[m];
      for (let t = 0, lo = j, hi = j + k - 1; t < pad; t++, lo++, hi--) {
        const wt = w[t];
        ux += wt * (mx[lo] + mx[hi]);
        uy += wt * (my[lo] + my[hi]);
        uxx += wt * (mxx[lo] + mxx[hi]);
        uyy += wt * (myy[lo] + myy[hi]);
        uxy += wt * (mxy[lo] + mxy[hi]);
      }
      const vx = covNorm * (uxx - ux * ux),
        vy = covNorm * (uyy - uy * uy),
        vxy = covNorm * (uxy - ux * uy);
      map[rowOut + j] = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    }
  }
  return { rows: outRows, cols: outCols, pad, map };
}

/** Mean SSIM over the cropped region (see the file comment for the two variants). */
export function ssim(ref: Image2D, test: Image2D, options: SsimOptions): number {
  const { map } = ssimMap(ref, test, options);
  let s = 0;
  for (const v of map) s += v;
  return s / map.length;
}

export { summarise, type MeanStd, type ScoreSummary, type SliceScores } from "./summary.js";

/**
 * What a ground truth (an upload, an `--in` image) must be to be scored: finite, and no smaller
 * than the SSIM window; a UserError names the file and `field`.
 */
export function checkScorable(v: Volume, file: string, field: string): void {
  const w = ssimWindowSize();
  if (v.rows < w || v.cols < w)
    throw new UserError(
      `${file}: the image is ${v.rows}x${v.cols}; reconstructions are scored with an ${w}x${w} SSIM window, so images need at least ${w}x${w}`,
      "bad_image",
      field,
    );
  let bad = 0;
  for (let i = 0; i < v.data.length; i++) if (!Number.isFinite(v.data[i])) bad++;
  if (bad > 0)
    throw new UserError(
      `${file}: ${bad} of ${v.data.length} values are NaN or infinite; images must hold finite numbers`,
      "bad_image",
      field,
    );
}

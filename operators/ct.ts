/**
 * 2-D parallel-beam CT.
 *
 * Geometry: an N x N image with unit pixels, centre at ((N-1)/2, (N-1)/2); pixel (row, col) sits at
 * x = col - (N-1)/2, y = (N-1)/2 - row (y up). View k has angle theta_k = k pi / V (over [0, pi),
 * no endpoint); a ray at detector coordinate t is the line x cos(theta) + y sin(theta) = t, and
 * detector bin j is centred at t_j = j - (D-1)/2 with D = ceil(sqrt(2) N) by default (spacing =
 * pixel spacing). The sinogram is row-major [views, detectors]. Values are line integrals in pixel
 * units: a ray through k pixels of value 1 measures about k.
 *
 * The projector is Joseph's method (Joseph 1982, operators/joseph.ts): a ray steps along the
 * image axis it is most aligned with, one pixel per step, linearly interpolating between the two
 * pixels it passes between, weighted by the path length per step. Forward and adjoint run the
 * same steps with the same weights (gather versus scatter), so the adjoint is the exact transpose
 * of the forward.
 */
import { fftPlan } from "./fft.js";
import { josephAdjoint, josephForward, josephPlan, type JosephPlan } from "./joseph.js";
import type { LinearOperator } from "./linear-operator.js";
import { createRng } from "./random.js";

export function equispacedAngles(views: number): Float64Array {
  return Float64Array.from({ length: views }, (_, k) => (k * Math.PI) / views);
}

/** Indices of `views` views spread evenly through a `fullViews` set (sparse-view subsets). */
export function sparseViewIndices(fullViews: number, views: number): number[] {
  if (views > fullViews) throw new RangeError(`cannot take ${views} views out of ${fullViews}`);
  return Array.from({ length: views }, (_, k) => Math.floor((k * fullViews) / views));
}

export interface ProjectorOptions {
  /** Image size N (N x N). */
  size: number;
  /** Number of equispaced views over [0, pi); ignored when `angles` is given. */
  views?: number;
  /** Explicit view angles in radians (e.g. a sparse subset of a full-view set). */
  angles?: Float64Array;
  detectors?: number;
}

export class ParallelBeamProjector implements LinearOperator {
  readonly name = "ct-parallel-beam";
  readonly size: number;
  readonly angles: Float64Array;
  readonly detectors: number;
  readonly input;
  readonly output;
  private plan?: JosephPlan;

  constructor(options: ProjectorOptions) {
    const n = options.size;
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`image size must be a positive integer, got ${n}`);
    this.size = n;
    this.angles = options.angles ?? equispacedAngles(options.views ?? 180);
    if (this.angles.length < 1) throw new RangeError("a CT projector needs at least one view");
    this.detectors = options.detectors ?? Math.ceil(Math.SQRT2 * n);
    this.input = { shape: [n, n], complex: false } as const;
    this.output = { shape: [this.angles.length, this.detectors], complex: false } as const;
  }

  /** The projector restricted to some of its views. */
  subset(viewIndices: readonly number[]): ParallelBeamProjector {
    return new ParallelBeamProjector({
      size: this.size,
      detectors: this.detectors,
      angles: Float64Array.from(viewIndices, (i) => this.angles[i]),
    });
  }

  forward(
    x: Float32Array,
    out: Float32Array = new Float32Array(this.angles.length * this.detectors),
  ): Float32Array {
    return josephForward(this.rays(), x, out);
  }

  adjoint(y: Float32Array, out: Float32Array = new Float32Array(this.size * this.size)): Float32Array {
    return josephAdjoint(this.rays(), y, out);
  }

  /** The rays, planned on first use. */
  private rays(): JosephPlan {
    this.plan ??= josephPlan(this.size, this.detectors, this.angles);
    return this.plan;
  }
}

export const FBP_FILTERS = ["ramp", "shepp-logan", "cosine", "hamming", "hann"] as const;
export type FbpFilter = (typeof FBP_FILTERS)[number];

/** A filter's name as an FbpFilter (absent: ramp); a name that is none is an error naming the known ones. */
export function fbpFilter(name: unknown = "ramp"): FbpFilter {
  const filter = FBP_FILTERS.find((f) => f === name);
  if (!filter)
    throw new RangeError(`unknown FBP filter '${String(name)}' (known: ${FBP_FILTERS.join(", ")})`);
  return filter;
}

const filterCache = new Map<string, Float64Array>();
/**
 * Frequency response of the filter at padded length `size`. The ramp is the DFT of the
 * band-limited spatial ramp of Kak & Slaney (1988, eq. 3.61: h(0) = 1/4, h(n) = -1/(pi n)^2 for
 * odd n, 0 for even n), which, unlike a sampled |f|, has no DC error; the windows follow
 * scikit-image's `iradon`.
 */
function filterResponse(size: number, filter: FbpFilter): Float64Array {
  const key = `${size}:${filter}`;
  const cached = filterCache.get(key);
  if (cached) return cached;
  const h = new Float64Array(2 * size);
  h[0] = 0.25;
  for (let k = 1; k < size / 2; k += 2) {
    const v = -1 / (Math.PI * k) ** 2;
    h[2 * k] = v;
    h[2 * (size - k)] = v;
  }
  fftPlan(size).transform(h, -1);
  const resp = new Float64Array(size);
  for (let k = 0; k < size; k++) {
    // Signed frequency in cycles per sample (numpy fftfreq) and omega = 2 pi f.
    const f = k < size / 2 ? k / size : (k - size) / size;
    const omega = 2 * Math.PI * f;
    let win = 1;
    if (filter === "shepp-logan") win = k === 0 ? 1 : Math.sin(omega / 2) / (omega / 2);
    else if (filter === "cosine") win = Math.cos(omega / 2);
    else if (filter === "hamming") win = 0.54 + 0.46 * Math.cos(omega);
    else if (filter === "hann") win = 0.5 + 0.5 * Math.cos(omega);
    resp[k] = h[2 * k] * win;
  }
  filterCache.set(key, resp);
  return resp;
}

export interface FbpOptions {
  filter?: FbpFilter;
}

/**
 * Filtered backprojection for the projector's geometry. Each view is ramp-filtered (zero padded
 * to a power of two >= 2 D to avoid circular wrap-around), then backprojected pixel by pixel with
 * linear interpolation on the detector and weighted by pi / V, the angular step: a full-view FBP
 * reproduces the image's intensity.
 */
export function fbp(
  sino: Float32Array,
  projector: ParallelBeamProjector,
  options: FbpOptions = {},
): Float32Array {
  const { size: n, detectors: d, angles } = projector;
  const views = angles.length;
  if (sino.length !== views * d)
    throw new RangeError(`sinogram has ${sino.length} values, expected ${views} views x ${d} detectors`);
  let padded = 64;
  while (padded < 2 * d) padded *= 2;
  const resp = filterResponse(padded, options.filter ?? "ramp");
  const plan = fftPlan(padded);
  const filtered = new Float32Array(views * d);
  const line = new Float64Array(2 * padded);
  for (let v = 0; v < views; v++) {
    line.fill(0);
    for (let j = 0; j < d; j++) line[2 * j] = sino[v * d + j];
    plan.transform(line, -1);
    for (let k = 0; k < padded; k++) {
      line[2 * k] *= resp[k];
      line[2 * k + 1] *= resp[k];
    }
    plan.transform(line, 1);
    for (let j = 0; j < d; j++) filtered[v * d + j] = line[2 * j] / padded;
  }
  const out = new Float32Array(n * n);
  const c0 = (n - 1) / 2,
    t0 = (d - 1) / 2;
  const scale = Math.PI / views;
  for (let v = 0; v < views; v++) {
    const cos = Math.cos(angles[v]),
      sin = Math.sin(angles[v]);
    const row = filtered.subarray(v * d, (v + 1) * d);
    for (let r = 0; r < n; r++) {
      const y = c0 - r;
      // t = x cos + y sin + t0 in detector index units, advancing by cos per column.
      let t = -c0 * cos + y * sin + t0;
      const base = r * n;
      for (let c = 0; c < n; c++, t += cos) {
        const k = Math.floor(t);
        if (k < 0 || k + 1 >= d) continue;
        const f = t - k;
        out[base + c] += ((1 - f) * row[k] + f * row[k + 1]) * scale;
      }
    }
  }
  return out;
}

/** Additive white Gaussian noise on the sinogram (a new array; the same seed gives the same bytes). */
export function addSinogramGaussianNoise(sino: Float32Array, sigma: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return sino.map((p) => p + sigma * rng.normal());
}

export interface PoissonNoiseOptions {
  /** Incident photons per detector bin. */
  I0: number;
  /**
   * Converts line integrals of image values in pixel units to attenuation: 0.0195 means an image
   * value of 1 is water (mu = 0.195/cm at about 70 keV) at 1 mm pixels.
   */
  lineIntegralScale?: number;
  seed: number;
}

/**
 * Transmission (Beer-Lambert) noise: counts ~ Poisson(I0 exp(-s p)); the measured line integral is
 * -ln(max(counts, 1) / I0) / s (a zero count is clamped to one photon, as scanners do).
 */
export function addSinogramPoissonNoise(sino: Float32Array, options: PoissonNoiseOptions): Float32Array {
  const s = options.lineIntegralScale ?? 0.0195;
  const rng = createRng(options.seed);
  return sino.map((p) => {
    const counts = rng.poisson(options.I0 * Math.exp(-s * p));
    return -Math.log(Math.max(counts, 1) / options.I0) / s;
  });
}

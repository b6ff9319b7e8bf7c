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
 * The projector is Joseph's method (Joseph 1982): a ray steps along the image axis it is most
 * aligned with, one pixel per step, linearly interpolating between the two pixels it passes
 * between, weighted by the path length per step. Forward and adjoint run the same steps with the
 * same weights (gather versus scatter), so the adjoint is the exact transpose of the forward.
 */
import { fftPlan } from "./fft.js";
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
  private plan?: RayPlan;

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
    const { views, rays } = this.rayPlan();
    const n = this.size,
      d = this.detectors;
    const st = rays.steps,
      ic = rays.intercept;
    for (let v = 0; v < views.length; v++) {
      const { b, w, stride, step } = views[v];
      // Rays in pairs: over the steps where both are inside, two independent sums in one loop.
      for (let j = 0; j < d; j += 2) {
        const s = v * d + j,
          r = 4 * s;
        const a0 = ic[s],
          from0 = st[r + 1],
          to0 = st[r + 2];
        let acc0 = gatherEdge(x, n, a0, b, stride, step, st[r], from0, 0);
        if (j + 1 === d) {
          acc0 = gatherInside(x, a0, b, stride, step, from0, to0, acc0);
          out[s] = gatherEdge(x, n, a0, b, stride, step, to0, st[r + 3], acc0) * w;
          continue;
        }
        const a1 = ic[s + 1],
          from1 = st[r + 5],
          to1 = st[r + 6];
        let acc1 = gatherEdge(x, n, a1, b, stride, step, st[r + 4], from1, 0);
        let both = Math.max(from0, from1),
          end = Math.min(to0, to1);
        if (both >= end) both = end = Math.max(to0, to1);
        acc0 = gatherInside(x, a0, b, stride, step, from0, Math.min(both, to0), acc0);
        acc1 = gatherInside(x, a1, b, stride, step, from1, Math.min(both, to1), acc1);
        for (let i = both; i < end; i++) {
          const is = i * step;
          const p0 = a0 + b * i;
          const k0 = p0 | 0;
          const f0 = p0 - k0;
          const i0 = k0 * stride + is;
          acc0 += (1 - f0) * x[i0];
          acc0 += f0 * x[i0 + stride];
          const p1 = a1 + b * i;
          const k1 = p1 | 0;
          const f1 = p1 - k1;
          const i1 = k1 * stride + is;
          acc1 += (1 - f1) * x[i1];
          acc1 += f1 * x[i1 + stride];
        }
        acc0 = gatherInside(x, a0, b, stride, step, Math.max(end, from0), to0, acc0);
        acc1 = gatherInside(x, a1, b, stride, step, Math.max(end, from1), to1, acc1);
        out[s] = gatherEdge(x, n, a0, b, stride, step, to0, st[r + 3], acc0) * w;
        out[s + 1] = gatherEdge(x, n, a1, b, stride, step, to1, st[r + 7], acc1) * w;
      }
    }
    return out;
  }

  adjoint(y: Float32Array, out: Float32Array = new Float32Array(this.size * this.size)): Float32Array {
    out.fill(0);
    const { views, rays } = this.rayPlan();
    const n = this.size,
      d = this.detectors;
    const st = rays.steps,
      ic = rays.intercept;
    for (let v = 0; v < views.length; v++) {
      const { b, w, stride, step } = views[v];
      // Rays in pairs, as in forward. A pixel of step i is reached by no other step of a ray, so
      // it still receives ray j's share before ray j + 1's: the same sums in the same order.
      for (let j = 0; j < d; j += 2) {
        const s = v * d + j,
          r = 4 * s;
        const ys0 = y[s] * w;
        if (j + 1 === d) {
          if (ys0 !== 0) scatterRay(out, n, ic[s], b, stride, step, st, r, ys0);
          continue;
        }
        const ys1 = y[s + 1] * w;
        const a0 = ic[s],
          from0 = st[r + 1],
          to0 = st[r + 2];
        const a1 = ic[s + 1],
          from1 = st[r + 5],
          to1 = st[r + 6];
        const both = Math.max(from0, from1),
          end = Math.min(to0, to1);
        if (ys0 === 0 || ys1 === 0 || both >= end) {
          if (ys0 !== 0) scatterRay(out, n, a0, b, stride, step, st, r, ys0);
          if (ys1 !== 0) scatterRay(out, n, a1, b, stride, step, st, r + 4, ys1);
          continue;
        }
        scatterEdge(out, n, a0, b, stride, step, st[r], from0, ys0);
        scatterInside(out, a0, b, stride, step, from0, both, ys0);
        scatterEdge(out, n, a1, b, stride, step, st[r + 4], from1, ys1);
        scatterInside(out, a1, b, stride, step, from1, both, ys1);
        for (let i = both; i < end; i++) {
          const is = i * step;
          const p0 = a0 + b * i;
          const k0 = p0 | 0;
          const f0 = p0 - k0;
          const i0 = k0 * stride + is;
          out[i0] += (1 - f0) * ys0;
          out[i0 + stride] += f0 * ys0;
          const p1 = a1 + b * i;
          const k1 = p1 | 0;
          const f1 = p1 - k1;
          const i1 = k1 * stride + is;
          out[i1] += (1 - f1) * ys1;
          out[i1 + stride] += f1 * ys1;
        }
        scatterInside(out, a0, b, stride, step, end, to0, ys0);
        scatterEdge(out, n, a0, b, stride, step, to0, st[r + 3], ys0);
        scatterInside(out, a1, b, stride, step, end, to1, ys1);
        scatterEdge(out, n, a1, b, stride, step, to1, st[r + 7], ys1);
      }
    }
    return out;
  }

  /**
   * The Joseph rays, computed once per projector. For a ray stepping along columns, the row
   * position is linear in the column index, row(c) = a + b c; pixels (floor(row), c) and
   * (floor(row) + 1, c) get weights (1 - f) w and f w with f the fractional part and
   * w = 1 / |sin(theta)| the path per column (rows likewise, with the roles swapped). Each ray's
   * steps lo..hi - 1 are those with -1 < p < n; its interior steps from..to - 1, where both
   * neighbours are inside, run without bounds checks, and the few edge steps either side with them.
   */
  private rayPlan(): RayPlan {
    if (this.plan) return this.plan;
    const n = this.size,
      d = this.detectors;
    const c0 = (n - 1) / 2,
      t0 = (d - 1) / 2;
    const views: ViewPlan[] = [];
    const intercept = new Float64Array(this.angles.length * d);
    const steps = new Int32Array(4 * this.angles.length * d);
    for (let v = 0; v < this.angles.length; v++) {
      const th = this.angles[v];
      const cos = Math.cos(th),
        sin = Math.sin(th);
      const alongCols = Math.abs(sin) >= Math.abs(cos);
      // Stepping index i runs over columns (alongCols) or rows; position p(i) = a + b i is the
      // fractional row (or column) where the ray crosses line i: along columns x = c - c0,
      // y = (t - x cos) / sin and row = c0 - y; along rows y = c0 - r, x = (t - y sin) / cos and
      // col = x + c0. Pixel (p, i) is at p n + i along columns, i n + p along rows.
      const b = alongCols ? cos / sin : sin / cos;
      const w = 1 / Math.abs(alongCols ? sin : cos);
      views.push({ b, w, stride: alongCols ? n : 1, step: alongCols ? 1 : n });
      for (let j = 0; j < d; j++) {
        const t = j - t0;
        const a = alongCols ? c0 - t / sin - c0 * b : t / cos - c0 * b + c0;
        // Valid i: -1 < a + b i < n, intersected with [0, n).
        let lo = 0,
          hi = n - 1;
        if (Math.abs(b) < 1e-12) {
          if (a <= -1 || a >= n) hi = -1;
        } else {
          const i1 = (-1 - a) / b,
            i2 = (n - a) / b;
          lo = Math.max(0, Math.ceil(Math.min(i1, i2) - 1e-9));
          hi = Math.min(n - 1, Math.floor(Math.max(i1, i2) + 1e-9));
        }
        hi = Math.max(hi + 1, lo);
        // p is monotone in i, so the interior steps are one run.
        const inside = (i: number) => {
          const p = a + b * i;
          return p >= 0 && p < n - 1;
        };
        let from = lo;
        while (from < hi && !inside(from)) from++;
        let to = from;
        while (to < hi && inside(to)) to++;
        const s = v * d + j;
        intercept[s] = a;
        steps[4 * s] = lo;
        steps[4 * s + 1] = from;
        steps[4 * s + 2] = to;
        steps[4 * s + 3] = hi;
      }
    }
    this.plan = { views, rays: { intercept, steps } };
    return this.plan;
  }
}

interface ViewPlan {
  /** Slope of the ray position per step, and path length per step. */
  b: number;
  w: number;
  /** Index offsets of one unit of position p and of one step i. */
  stride: number;
  step: number;
}

interface RayPlan {
  views: ViewPlan[];
  /** Per ray (view-major): the intercept a; steps lo, from, to, hi (see rayPlan). */
  rays: { intercept: Float64Array; steps: Int32Array };
}

/*
 * The steps of one ray, from..to - 1, at positions p = a + b i: the pixels floor(p) and
 * floor(p) + 1 along the interpolation axis (index offset `stride`) of line i (offset `step`).
 * "Inside" steps have both neighbours in the image (0 <= p < n - 1, so p | 0 is floor(p)) and run
 * without bounds checks; "edge" steps check each neighbour.
 */
function gatherInside(
  x: Float32Array,
  a: number,
  b: number,
  stride: number,
  step: number,
  from: number,
  to: number,
  acc: number,
): number {
  for (let i = from; i < to; i++) {
    const p = a + b * i;
    const k = p | 0;
    const f = p - k;
    const i0 = k * stride + i * step;
    acc += (1 - f) * x[i0];
    acc += f * x[i0 + stride];
  }
  return acc;
}

function gatherEdge(
  x: Float32Array,
  n: number,
  a: number,
  b: number,
  stride: number,
  step: number,
  from: number,
  to: number,
  acc: number,
): number {
  for (let i = from; i < to; i++) {
    const p = a + b * i;
    const k = Math.floor(p);
    const f = p - k;
    const i0 = k * stride + i * step;
    if (k >= 0 && k < n) acc += (1 - f) * x[i0];
    if (k + 1 >= 0 && k + 1 < n) acc += f * x[i0 + stride];
  }
  return acc;
}

/** The transposes: ys (the ray's value times its path per step) spread over the neighbours. */
function scatterInside(
  out: Float32Array,
  a: number,
  b: number,
  stride: number,
  step: number,
  from: number,
  to: number,
  ys: number,
): void {
  for (let i = from; i < to; i++) {
    const p = a + b * i;
    const k = p | 0;
    const f = p - k;
    const i0 = k * stride + i * step;
    out[i0] += (1 - f) * ys;
    out[i0 + stride] += f * ys;
  }
}

function scatterEdge(
  out: Float32Array,
  n: number,
  a: number,
  b: number,
  stride: number,
  step: number,
  from: number,
  to: number,
  ys: number,
): void {
  for (let i = from; i < to; i++) {
    const p = a + b * i;
    const k = Math.floor(p);
    const f = p - k;
    const i0 = k * stride + i * step;
    if (k >= 0 && k < n) out[i0] += (1 - f) * ys;
    if (k + 1 >= 0 && k + 1 < n) out[i0 + stride] += f * ys;
  }
}

/** One whole ray scattered (its steps at st[r..r + 3]: lo, from, to, hi). */
function scatterRay(
  out: Float32Array,
  n: number,
  a: number,
  b: number,
  stride: number,
  step: number,
  st: Int32Array,
  r: number,
  ys: number,
): void {
  scatterEdge(out, n, a, b, stride, step, st[r], st[r + 1], ys);
  scatterInside(out, a, b, stride, step, st[r + 1], st[r + 2], ys);
  scatterEdge(out, n, a, b, stride, step, st[r + 2], st[r + 3], ys);
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

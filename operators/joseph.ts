/**
 * Joseph's projector (Joseph 1982) for the parallel-beam geometry of ct.ts: a ray steps along the
 * image axis it is most aligned with, one pixel per step, linearly interpolating between the two
 * pixels it passes between, weighted by the path length per step. For a ray stepping along
 * columns the row position is linear in the column index, p(c) = a + b c; pixels (floor(p), c)
 * and (floor(p) + 1, c) get weights (1 - f) w and f w, with f the fractional part of p and
 * w = 1 / |sin(theta)| the path per column (rows likewise, the roles swapped, w = 1 / |cos|).
 * Forward (gather) and adjoint (scatter) run the same steps with the same weights, so the adjoint
 * is the exact transpose of the forward.
 *
 * The rays are planned once per geometry (josephPlan): each ray's intercept and its steps, split
 * into the run where both neighbours are inside the image, which runs without bounds checks, and
 * the few edge steps either side, which check each neighbour. Rays go in pairs through the steps
 * both have inside (two independent sums in one loop). The sums are those of the plain loop, in
 * the same order, so the results are the same floats.
 */

export interface JosephPlan {
  size: number;
  detectors: number;
  /**
   * Per view: slope b of the position per step, path w per step, index offsets of one unit of
   * position (`stride`) and of one step (`step`): pixel (p, i) is at p n + i along columns,
   * i n + p along rows.
   */
  views: { b: number; w: number; stride: number; step: number }[];
  /** Per ray (view-major): the intercept a. */
  intercept: Float64Array;
  /**
   * Per ray, 4 step indices lo <= from <= to <= hi: steps lo..hi - 1 are those with -1 < p < n
   * (the ray crosses the image), from..to - 1 those with 0 <= p < n - 1 (both neighbours inside).
   */
  steps: Int32Array;
}

/** The rays of an N x N image (centre (N-1)/2), `detectors` bins at unit spacing, these angles. */
export function josephPlan(size: number, detectors: number, angles: Float64Array): JosephPlan {
  const n = size,
    d = detectors;
  const c0 = (n - 1) / 2,
    t0 = (d - 1) / 2;
  const views: JosephPlan["views"] = [];
  const intercept = new Float64Array(angles.length * d);
  const steps = new Int32Array(4 * angles.length * d);
  for (let v = 0; v < angles.length; v++) {
    const cos = Math.cos(angles[v]),
      sin = Math.sin(angles[v]);
    const alongCols = Math.abs(sin) >= Math.abs(cos);
    // Step i runs over columns (alongCols) or rows; p(i) = a + b i is the fractional row (or
    // column) where the ray crosses line i: along columns x = c - c0, y = (t - x cos) / sin and
    // row = c0 - y; along rows y = c0 - r, x = (t - y sin) / cos and col = x + c0.
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
      // p is monotone in i, so the steps with both neighbours inside are one run.
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
      steps.set([lo, from, to, hi], 4 * s);
    }
  }
  return { size, detectors, views, intercept, steps };
}

/** y = A x into `out` (every bin written). */
export function josephForward(plan: JosephPlan, x: Float32Array, out: Float32Array): Float32Array {
  const { size: n, detectors: d, intercept: ic, steps: st } = plan;
  for (let v = 0; v < plan.views.length; v++) {
    const { b, w, stride, step } = plan.views[v];
    for (let j = 0; j < d; j += 2) {
      const s = v * d + j,
        r = 4 * s;
      if (j + 1 === d) {
        out[s] = gatherRay(x, n, ic[s], b, stride, step, st, r) * w;
        continue;
      }
      const both = Math.max(st[r + 1], st[r + 5]),
        end = Math.min(st[r + 2], st[r + 6]);
      if (both >= end) {
        out[s] = gatherRay(x, n, ic[s], b, stride, step, st, r) * w;
        out[s + 1] = gatherRay(x, n, ic[s + 1], b, stride, step, st, r + 4) * w;
        continue;
      }
      const a0 = ic[s],
        a1 = ic[s + 1];
      let acc0 = gatherEdge(x, n, a0, b, stride, step, st[r], st[r + 1], 0);
      acc0 = gatherInside(x, a0, b, stride, step, st[r + 1], both, acc0);
      let acc1 = gatherEdge(x, n, a1, b, stride, step, st[r + 4], st[r + 5], 0);
      acc1 = gatherInside(x, a1, b, stride, step, st[r + 5], both, acc1);
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
      acc0 = gatherInside(x, a0, b, stride, step, end, st[r + 2], acc0);
      out[s] = gatherEdge(x, n, a0, b, stride, step, st[r + 2], st[r + 3], acc0) * w;
      acc1 = gatherInside(x, a1, b, stride, step, end, st[r + 6], acc1);
      out[s + 1] = gatherEdge(x, n, a1, b, stride, step, st[r + 6], st[r + 7], acc1) * w;
    }
  }
  return out;
}

/**
 * x = A^T y into `out`. A pixel of step i is reached by no other step of a ray, so with the rays
 * in pairs it still receives ray j's share before ray j + 1's: the sums of the plain loop.
 */
export function josephAdjoint(plan: JosephPlan, y: Float32Array, out: Float32Array): Float32Array {
  const { size: n, detectors: d, intercept: ic, steps: st } = plan;
  out.fill(0);
  for (let v = 0; v < plan.views.length; v++) {
    const { b, w, stride, step } = plan.views[v];
    for (let j = 0; j < d; j += 2) {
      const s = v * d + j,
        r = 4 * s;
      const ys0 = y[s] * w;
      if (j + 1 === d) {
        if (ys0 !== 0) scatterRay(out, n, ic[s], b, stride, step, st, r, ys0);
        continue;
      }
      const ys1 = y[s + 1] * w;
      const both = Math.max(st[r + 1], st[r + 5]),
        end = Math.min(st[r + 2], st[r + 6]);
      // A ray of value 0 adds nothing (and is skipped, as the plain loop skips it).
      if (ys0 === 0 || ys1 === 0 || both >= end) {
        if (ys0 !== 0) scatterRay(out, n, ic[s], b, stride, step, st, r, ys0);
        if (ys1 !== 0) scatterRay(out, n, ic[s + 1], b, stride, step, st, r + 4, ys1);
        continue;
      }
      const a0 = ic[s],
        a1 = ic[s + 1];
      scatterEdge(out, n, a0, b, stride, step, st[r], st[r + 1], ys0);
      scatterInside(out, a0, b, stride, step, st[r + 1], both, ys0);
      scatterEdge(out, n, a1, b, stride, step, st[r + 4], st[r + 5], ys1);
      scatterInside(out, a1, b, stride, step, st[r + 5], both, ys1);
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
      scatterInside(out, a0, b, stride, step, end, st[r + 2], ys0);
      scatterEdge(out, n, a0, b, stride, step, st[r + 2], st[r + 3], ys0);
      scatterInside(out, a1, b, stride, step, end, st[r + 6], ys1);
      scatterEdge(out, n, a1, b, stride, step, st[r + 6], st[r + 7], ys1);
    }
  }
  return out;
}

/*
 * Steps from..to - 1 of one ray at positions p = a + b i. "Inside" steps have both neighbours in
 * the image (0 <= p < n - 1, so p | 0 is floor(p)); "edge" steps check each neighbour.
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

/** One whole ray (its steps at st[r..r + 3]: lo, from, to, hi), unscaled by w. */
function gatherRay(
  x: Float32Array,
  n: number,
  a: number,
  b: number,
  stride: number,
  step: number,
  st: Int32Array,
  r: number,
): number {
  let acc = gatherEdge(x, n, a, b, stride, step, st[r], st[r + 1], 0);
  acc = gatherInside(x, a, b, stride, step, st[r + 1], st[r + 2], acc);
  return gatherEdge(x, n, a, b, stride, step, st[r + 2], st[r + 3], acc);
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

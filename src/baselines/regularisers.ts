/**
 * Sparsifying transforms W for the analysis-form regularised reconstructions
 *   min_x 1/2 ||A x - y||^2 + lambda ||W x||_{2,1}.
 * Each works on real or complex images (interleaved) and lays out its coefficients in groups of
 * `groupSize` floats whose joint l2 norm is penalised: isotropic TV groups the horizontal and
 * vertical differences of a pixel (Rudin, Osher & Fatemi 1992); the wavelet groups re/im of a
 * coefficient.
 */
export interface SparsifyingTransform {
  readonly name: string;
  /** Number of floats of W x. */
  readonly length: number;
  readonly groupSize: number;
  /** An upper bound on ||W||^2, for PDHG step sizes. */
  readonly normSquaredBound: number;
  forward(x: Float32Array, out: Float32Array): void;
  adjoint(z: Float32Array, out: Float32Array): void;
}

/**
 * Forward differences with Neumann boundary (zero difference past the last row/column);
 * ||grad||^2 <= 8 (Chambolle 2004).
 */
export function finiteDifferences(rows: number, cols: number, complex: boolean): SparsifyingTransform {
  const ch = complex ? 2 : 1;
  const g = 2 * ch;
  return {
    name: "tv",
    length: rows * cols * g,
    groupSize: g,
    normSquaredBound: 8,
    forward(x, z) {
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const p = r * cols + c;
          for (let k = 0; k < ch; k++) {
            const v = x[p * ch + k];
            z[p * g + k] = c + 1 < cols ? x[(p + 1) * ch + k] - v : 0;
            z[p * g + ch + k] = r + 1 < rows ? x[(p + cols) * ch + k] - v : 0;
          }
        }
    },
    adjoint(z, x) {
      // -div, the exact transpose of forward.
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const p = r * cols + c;
          for (let k = 0; k < ch; k++) {
            let s = 0;
            if (c + 1 < cols) s -= z[p * g + k];
            if (c > 0) s += z[(p - 1) * g + k];
            if (r + 1 < rows) s -= z[p * g + ch + k];
            if (r > 0) s += z[(p - cols) * g + ch + k];
            x[p * ch + k] = s;
          }
        }
    },
  };
}

/**
 * Undecimated (stationary, "a trous") 2-D Haar wavelet with periodic boundaries and `levels`
 * levels, detail bands only (the coarse approximation is not penalised, so its coefficients are
 * not part of W x). Per level, the filters h = [1/2, 1/2] and g = [1/2, -1/2] satisfy
 * |H|^2 + |G|^2 = 1, so the full transform is a Parseval frame and the detail part has
 * ||W|| <= 1. It works at any image size (no dyadic constraint) and is shift invariant, which
 * avoids the blocking artefacts of a decimated wavelet in CS-MRI (cf. cycle spinning).
 */
export function stationaryHaar(
  rows: number,
  cols: number,
  complex: boolean,
  levels = 4,
): SparsifyingTransform {
  const ch = complex ? 2 : 1;
  const n = rows * cols * ch;
  const bands = 3 * levels;
  const a = new Float32Array(n);
  const lo = new Float32Array(n);
  const hi = new Float32Array(n);
  const tmp = new Float32Array(n);
  // One 1-D analysis step along rows (axis 1) or columns (axis 0) with shift s (periodic).
  const analyse = (src: Float32Array, low: Float32Array, high: Float32Array, axis: 0 | 1, s: number) => {
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const q = axis === 1 ? r * cols + ((c + s) % cols) : ((r + s) % rows) * cols + c;
        const p = r * cols + c;
        for (let k = 0; k < ch; k++) {
          const u = src[p * ch + k],
            v = src[q * ch + k];
          low[p * ch + k] = 0.5 * (u + v);
          high[p * ch + k] = 0.5 * (u - v);
        }
      }
  };
  // Transpose of `analyse`: dst = H^T low + G^T high (accumulating when `add`).
  const synthesise = (low: Float32Array, high: Float32Array, dst: Float32Array, axis: 0 | 1, s: number) => {
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const q =
          axis === 1 ? r * cols + ((c - s + cols * s) % cols) : ((r - s + rows * s) % rows) * cols + c;
        const p = r * cols + c;
        for (let k = 0; k < ch; k++) {
          dst[p * ch + k] =
            0.5 * (low[p * ch + k] + high[p * ch + k]) + 0.5 * (low[q * ch + k] - high[q * ch + k]);
        }
      }
  };
  const ll = new Float32Array(n),
    lh = new Float32Array(n),
    hl = new Float32Array(n),
    hh = new Float32Array(n);
  return {
    name: "wavelet",
    length: bands * n,
    groupSize: ch,
    normSquaredBound: 1,
    forward(x, z) {
      a.set(x);
      for (let j = 0; j < levels; j++) {
        const s = 1 << j;
        analyse(a, lo, hi, 1, s);
        analyse(lo, ll, lh, 0, s);
        analyse(hi, hl, hh, 0, s);
        z.set(lh, 3 * j * n);
        z.set(hl, (3 * j + 1) * n);
        z.set(hh, (3 * j + 2) * n);
        a.set(ll);
      }
    },
    adjoint(z, x) {
      // Transpose of forward with the coarse band's contribution zero.
      a.fill(0);
      for (let j = levels - 1; j >= 0; j--) {
        const s = 1 << j;
        synthesise(a, z.subarray(3 * j * n, (3 * j + 1) * n), lo, 0, s);
        synthesise(
          z.subarray((3 * j + 1) * n, (3 * j + 2) * n),
          z.subarray((3 * j + 2) * n, (3 * j + 3) * n),
          hi,
          0,
          s,
        );
        synthesise(lo, hi, tmp, 1, s);
        a.set(tmp);
      }
      x.set(a);
    },
  };
}

/**
 * The proximal map of lambda ||W x||_{2,1}, argmin_x 1/2 ||x - b||^2 + lambda s ||W x / s||_{2,1}
 * for a real image b in units of a scale s (e.g. its 99th percentile, as PDHG normalises by
 * dataScale, so that one lambda means the same at any intensity), by the fast gradient
 * projection on the dual (Beck & Teboulle 2009, FGP): x = b - lambda s W^T q over the groups
 * |q_g| <= 1. It starts at x = b (q = 0) and moves monotonically towards the prox, so a few
 * iterations give a partial prox of the same sense.
 */
export function proxSparsity(
  w: SparsifyingTransform,
  b: Float32Array,
  lambda: number,
  scale: number,
  iterations: number,
): Float32Array {
  const n = b.length;
  const t = lambda * scale;
  if (!(t > 0) || iterations < 1) return Float32Array.from(b);
  const step = 1 / (t * w.normSquaredBound);
  const g = w.groupSize;
  const q = new Float32Array(w.length);
  const qOld = new Float32Array(w.length);
  const r = new Float32Array(w.length);
  const wtr = new Float32Array(n);
  const x = Float32Array.from(b);
  const wx = new Float32Array(w.length);
  let k = 1;
  for (let it = 0; it < iterations; it++) {
    // x(r) = b - t W^T r; the dual's gradient step r + step W x(r), projected on |q_g| <= 1.
    w.adjoint(r, wtr);
    for (let i = 0; i < n; i++) x[i] = b[i] - t * wtr[i];
    w.forward(x, wx);
    qOld.set(q);
    for (let j = 0; j < q.length; j += g) {
      let ss = 0;
      for (let c = 0; c < g; c++) {
        q[j + c] = r[j + c] + step * wx[j + c];
        ss += q[j + c] * q[j + c];
      }
      if (ss > 1) {
        const f = 1 / Math.sqrt(ss);
        for (let c = 0; c < g; c++) q[j + c] *= f;
      }
    }
    const kNext = (1 + Math.sqrt(1 + 4 * k * k)) / 2;
    const m = (k - 1) / kNext;
    for (let j = 0; j < q.length; j++) r[j] = q[j] + m * (q[j] - qOld[j]);
    k = kNext;
  }
  w.adjoint(q, wtr);
  for (let i = 0; i < n; i++) x[i] = b[i] - t * wtr[i];
  return x;
}

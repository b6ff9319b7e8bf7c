/**
 * Ellipse phantoms: the modified Shepp-Logan head phantom and seeded random-ellipse images.
 * Ellipses live on [-1, 1]^2 with y up; pixel centres follow MATLAB's `phantom`:
 * x = (col - (n-1)/2) / ((n-1)/2), y = ((n-1)/2 - row) / ((n-1)/2). Intensities add where
 * ellipses overlap.
 */
import { createRng } from "../operators/random.js";

export interface Ellipse {
  /** Additive intensity. */
  value: number;
  /** Semi-axes along the ellipse's own x and y. */
  a: number;
  b: number;
  x0: number;
  y0: number;
  /** Rotation in degrees, counter-clockwise. */
  phi: number;
}

/**
 * The modified Shepp-Logan phantom (Toft 1996, as MATLAB's phantom('Modified Shepp-Logan') and
 * scikit-image's shepp_logan_phantom): contrasts raised so that the brain (0.2) and its
 * structures (0.3, 0.1, 0.4) are visible; the skull is 1.
 */
export const MODIFIED_SHEPP_LOGAN: readonly Ellipse[] = [
  { value: 1, a: 0.69, b: 0.92, x0: 0, y0: 0, phi: 0 },
  { value: -0.8, a: 0.6624, b: 0.874, x0: 0, y0: -0.0184, phi: 0 },
  { value: -0.2, a: 0.11, b: 0.31, x0: 0.22, y0: 0, phi: -18 },
  { value: -0.2, a: 0.16, b: 0.41, x0: -0.22, y0: 0, phi: 18 },
  { value: 0.1, a: 0.21, b: 0.25, x0: 0, y0: 0.35, phi: 0 },
  { value: 0.1, a: 0.046, b: 0.046, x0: 0, y0: 0.1, phi: 0 },
  { value: 0.1, a: 0.046, b: 0.046, x0: 0, y0: -0.1, phi: 0 },
  { value: 0.1, a: 0.046, b: 0.023, x0: -0.08, y0: -0.605, phi: 0 },
  { value: 0.1, a: 0.023, b: 0.023, x0: 0, y0: -0.606, phi: 0 },
  { value: 0.1, a: 0.023, b: 0.046, x0: 0.06, y0: -0.605, phi: 0 },
];

/**
 * Rasterises ellipses (values add), visiting only each ellipse's bounding box. Each pixel is the
 * mean over ss x ss sub-pixel samples: the area average a detector pixel sees, which keeps edges
 * from aliasing in projections and k-space.
 */
export function rasterEllipses(n: number, ellipses: readonly Ellipse[], ss = 4): Float32Array {
  const out = new Float32Array(n * n);
  const h = (n - 1) / 2 || 1;
  const offsets = Array.from({ length: ss }, (_, k) => (k + 0.5) / ss - 0.5);
  const weight = 1 / (ss * ss);
  for (const e of ellipses) {
    const th = (e.phi * Math.PI) / 180;
    const cos = Math.cos(th),
      sin = Math.sin(th);
    const r = Math.max(e.a, e.b);
    const cMin = Math.max(0, Math.floor((e.x0 - r) * h + h) - 1),
      cMax = Math.min(n - 1, Math.ceil((e.x0 + r) * h + h) + 1);
    const rMin = Math.max(0, Math.floor(h - (e.y0 + r) * h) - 1),
      rMax = Math.min(n - 1, Math.ceil(h - (e.y0 - r) * h) + 1);
    for (let row = rMin; row <= rMax; row++)
      for (let col = cMin; col <= cMax; col++) {
        let inside = 0;
        for (const dy of offsets) {
          const y = (h - row - dy) / h - e.y0;
          for (const dx of offsets) {
            const x = (col + dx - h) / h - e.x0;
            const u = (x * cos + y * sin) / e.a,
              v = (-x * sin + y * cos) / e.b;
            if (u * u + v * v <= 1) inside++;
          }
        }
        if (inside) out[row * n + col] += e.value * inside * weight;
      }
  }
  return out;
}

export function sheppLogan(n: number): Float32Array {
  return rasterEllipses(n, MODIFIED_SHEPP_LOGAN);
}

/**
 * Random ellipses inside the unit disc, as in the "ellipses" training sets of learned
 * reconstruction (e.g. Adler & Oktem 2018): 5-15 ellipses with random centre, axes, angle and
 * additive intensity, clipped to [0, 1].
 */
export function randomEllipses(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const count = 5 + rng.int(11);
  const ellipses: Ellipse[] = [];
  for (let k = 0; k < count; k++) {
    const rad = 0.8 * Math.sqrt(rng.uniform());
    const ang = 2 * Math.PI * rng.uniform();
    const a = 0.05 + 0.4 * rng.uniform();
    const b = 0.05 + 0.4 * rng.uniform();
    ellipses.push({
      value: k === 0 ? 0.3 + 0.4 * rng.uniform() : rng.uniform() - 0.35,
      a: k === 0 ? 0.6 + 0.3 * rng.uniform() : Math.min(a, 0.95 - rad),
      b: k === 0 ? 0.6 + 0.3 * rng.uniform() : Math.min(b, 0.95 - rad),
      x0: k === 0 ? 0 : rad * Math.cos(ang),
      y0: k === 0 ? 0 : rad * Math.sin(ang),
      phi: 180 * rng.uniform(),
    });
  }
  const img = rasterEllipses(
    n,
    ellipses.filter((e) => e.a > 0 && e.b > 0),
  );
  for (let i = 0; i < img.length; i++) img[i] = Math.min(1, Math.max(0, img[i]));
  return img;
}

/**
 * Smooth random fields for phantom texture and bias fields: value noise on a coarse seeded grid,
 * bilinearly upsampled (cheap: one grid lookup per pixel).
 */
import type { Rng } from "../operators/random.js";

/** A smooth field with values in about [-1, 1], `cells` grid cells across the image. */
export function smoothField(n: number, cells: number, rng: Rng): Float32Array {
  const g = cells + 2;
  const grid = Float32Array.from({ length: g * g }, () => 2 * rng.uniform() - 1);
  const out = new Float32Array(n * n);
  const scale = cells / n;
  for (let r = 0; r < n; r++) {
    const fy = r * scale;
    const iy = Math.floor(fy),
      ty = fy - iy;
    for (let c = 0; c < n; c++) {
      const fx = c * scale;
      const ix = Math.floor(fx),
        tx = fx - ix;
      const i00 = iy * g + ix;
      const top = grid[i00] * (1 - tx) + grid[i00 + 1] * tx;
      const bot = grid[i00 + g] * (1 - tx) + grid[i00 + g + 1] * tx;
      out[r * n + c] = top * (1 - ty) + bot * ty;
    }
  }
  return out;
}

import { createRng } from "../operators/random.js";

/** Seeded random Float32Array in [-0.5, 0.5) (or N(0,1) with normal = true). */
export function randomVector(n: number, seed: number, normal = false): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = normal ? rng.normal() : rng.uniform() - 0.5;
  return v;
}

import { vi } from "vitest";
import { createRng } from "../operators/random.js";
import { main } from "../src/cli/main.js";

/** Seeded random Float32Array in [-0.5, 0.5) (or N(0,1) with normal = true). */
export function randomVector(n: number, seed: number, normal = false): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = normal ? rng.normal() : rng.uniform() - 0.5;
  return v;
}

/** Runs the CLI in-process, capturing stdout and stderr. */
export async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "",
    err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(args), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

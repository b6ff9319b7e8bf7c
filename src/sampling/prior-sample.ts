/** Unconditional samples of a loaded prior, in its normalised units, as images. */
import type { Image2D } from "../image/volume.js";
import type { LoadedPrior } from "../prior/checkpoint.js";
import { scoreFn } from "../prior/score.js";
import { odeSample, pcSample } from "./unconditional.js";

/** The range of `sample --steps` and `--count` (and of `train --grid-steps`, `--grid`). */
export const SAMPLE_RANGES = { steps: { min: 2, max: 2000 }, count: { min: 1, max: 256 } } as const;

export interface SampleOptions {
  count: number;
  size: number;
  steps: number;
  sampler: "pc" | "ode";
  snr?: number;
  seed?: number;
  onStep?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export function samplePrior(prior: LoadedPrior, o: SampleOptions): Image2D[] {
  const { net } = prior;
  const score = scoreFn(prior);
  const shape = [o.count, o.size, o.size, 1];
  const chain = { steps: o.steps, seed: o.seed, onStep: o.onStep, signal: o.signal };
  const x =
    o.sampler === "ode"
      ? odeSample(net.sde, score, shape, chain)
      : pcSample(net.sde, score, shape, { ...chain, snr: o.snr });
  const data = x.dataSync() as Float32Array;
  x.dispose();
  const n = o.size * o.size;
  return Array.from({ length: o.count }, (_, k) => ({
    rows: o.size,
    cols: o.size,
    data: data.slice(k * n, (k + 1) * n),
  }));
}

/** Unconditional samples of a loaded prior, in its normalised units, as images. */
import type { Image2D } from "../image/volume.js";
import { odeSample, pcSample } from "../sampling/unconditional.js";
import type { LoadedPrior } from "./checkpoint.js";
import { engineFor, scoreFunction } from "./engine.js";

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
  const score = scoreFunction(engineFor(prior));
  const shape = [o.count, o.size, o.size, 1];
  const x =
    o.sampler === "ode"
      ? odeSample(net.sde, score, shape, { steps: o.steps, seed: o.seed, onStep: o.onStep })
      : pcSample(net.sde, score, shape, {
          steps: o.steps,
          snr: o.snr,
          seed: o.seed,
          onStep: o.onStep,
          signal: o.signal,
        });
  const data = x.dataSync() as Float32Array;
  x.dispose();
  const n = o.size * o.size;
  return Array.from({ length: o.count }, (_, k) => ({
    rows: o.size,
    cols: o.size,
    data: data.slice(k * n, (k + 1) * n),
  }));
}

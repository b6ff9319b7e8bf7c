/**
 * Sampler ground truth: driven by the exact score of a known data distribution, the samplers must
 * reproduce that distribution. 4000 independent 1-D samples per run; tolerances cover the Monte
 * Carlo error (std of the mean ~0.01) and the discretisation error of the stated step counts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend, tf } from "../../src/prior/backend.js";
import { VeSde, VpSde, type Sde } from "../../src/prior/sde.js";
import { odeSample, pcSample } from "../../src/sampling/unconditional.js";
import { mixtureScore } from "./exact-score.js";

beforeAll(async () => {
  await initBackend("wasm");
});

const stats = (x: tf.Tensor) => {
  const v = Float32Array.from(x.dataSync());
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { v, mean, std };
};

const sdes: [string, Sde][] = [
  // sigma_max must dwarf the data (score_sde: the largest pairwise distance): the VE prior N(0, sigma_max^2)
  // ignores the data mean, which the deterministic ODE carries through as a bias of mean / sigma_max.
  ["VE", new VeSde(0.01, 50)],
  ["VP", new VpSde(0.1, 20)],
  ["sub-VP", new VpSde(0.1, 20, true)],
];

describe("unconditional samplers with the exact score", () => {
  const gaussian = [{ weight: 1, mean: 1.5, std: 0.5 }];
  it.each(sdes)("%s: PC (reverse diffusion + Langevin) reproduces N(1.5, 0.5^2)", (_, sde) => {
    const x = pcSample(sde, mixtureScore(sde, gaussian), [4000], { steps: 400, snr: 0.16, seed: 1 });
    const { mean, std } = stats(x);
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.05);
    expect(Math.abs(std / 0.5 - 1)).toBeLessThan(0.06);
  });

  it.each(sdes)("%s: Euler-Maruyama predictor alone reproduces N(1.5, 0.5^2)", (_, sde) => {
    const x = pcSample(sde, mixtureScore(sde, gaussian), [4000], {
      steps: 600,
      predictor: "euler-maruyama",
      corrector: "none",
      seed: 2,
    });
    const { mean, std } = stats(x);
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.05);
    expect(Math.abs(std / 0.5 - 1)).toBeLessThan(0.06);
  });

  it.each(sdes)("%s: probability-flow ODE reproduces N(1.5, 0.5^2)", (_, sde) => {
    const x = odeSample(sde, mixtureScore(sde, gaussian), [4000], { steps: 200, seed: 3 });
    const { mean, std } = stats(x);
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.05);
    expect(Math.abs(std / 0.5 - 1)).toBeLessThan(0.05);
  });

  it("PC and ODE reproduce the weights of a two-component mixture", () => {
    const sde = new VeSde(0.01, 50);
    const mix = [
      { weight: 0.3, mean: -2, std: 0.3 },
      { weight: 0.7, mean: 1, std: 0.4 },
    ];
    for (const x of [
      pcSample(sde, mixtureScore(sde, mix), [4000], { steps: 400, seed: 4 }),
      odeSample(sde, mixtureScore(sde, mix), [4000], { steps: 200, seed: 5 }),
    ]) {
      const v = Float32Array.from(x.dataSync());
      const left = v.filter((a) => a < -0.5);
      expect(Math.abs(left.length / v.length - 0.3)).toBeLessThan(0.03);
      const lm = left.reduce((a, b) => a + b, 0) / left.length;
      expect(Math.abs(lm + 2)).toBeLessThan(0.08);
    }
  });

  it("the ODE sampler stops on abort, with the signal's reason", () => {
    const sde = new VeSde(0.01, 50);
    const controller = new AbortController();
    let evaluations = 0;
    const score = mixtureScore(sde, gaussian);
    const counted = (x: tf.Tensor, t: number) => (evaluations++, score(x, t));
    const run = () =>
      odeSample(sde, counted, [100], {
        steps: 50,
        seed: 3,
        signal: controller.signal,
        onStep: (done) => done === 4 && controller.abort(new Error("cancelled")),
      });
    expect(run).toThrow("cancelled");
    // Heun's method: two score evaluations per step, and none after the 4th step.
    expect(evaluations).toBe(8);
  });

  it("is reproducible: the same seed gives the same samples", () => {
    const sde = new VeSde(0.01, 50);
    const score = mixtureScore(sde, gaussian);
    const a = pcSample(sde, score, [100], { steps: 20, seed: 7 }).dataSync();
    const b = pcSample(sde, score, [100], { steps: 20, seed: 7 }).dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});

/**
 * Every sampler (the posterior ones and the unconditional PC and ODE) frees every tensor but the
 * one it returns, on a finished run, on a cancelled one and on one whose score fails mid-chain:
 * a slice worker runs many of them in one process.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { LinearOperator } from "../../operators/linear-operator.js";
import { initBackend, tf } from "../../src/prior/backend.js";
import { VeSde } from "../../src/prior/sde.js";
import type { ScoreFn } from "../../src/prior/score.js";
import type { ChainOptions } from "../../src/sampling/chain.js";
import {
  ddsSample,
  langevinSample,
  songSample,
  type ConditionalOptions,
  type PosteriorProblem,
} from "../../src/sampling/conditional.js";
import { odeSample, pcSample } from "../../src/sampling/unconditional.js";
import { mixtureScore } from "./exact-score.js";

const rows = 4,
  cols = 4;
const sde = new VeSde(0.01, 20);
const score = mixtureScore(sde, [{ weight: 1, mean: 0.5, std: 0.3 }]);
// Keeps every other pixel: a cheap real-input operator.
const op: LinearOperator = {
  name: "inpaint",
  input: { shape: [rows, cols], complex: false },
  output: { shape: [8], complex: false },
  forward: (x) => Float32Array.from({ length: 8 }, (_, i) => x[2 * i]),
  adjoint: (y) => {
    const x = new Float32Array(rows * cols);
    y.forEach((v, i) => (x[2 * i] = v));
    return x;
  },
};
const p: PosteriorProblem = { op, y: new Float32Array(8).fill(0.5), noiseSigma: 0.05, rows, cols };

beforeAll(async () => {
  await initBackend("cpu");
});

type Run = (o: ConditionalOptions, s?: ScoreFn) => tf.Tensor;
const shape = [2, rows, cols, 1];
const samplers: [string, Run][] = [
  ["dds", (o, s = score) => ddsSample(sde, s, p, o)],
  ["dds from an estimate", (o, s = score) => ddsSample(sde, s, p, { ...o, sigmaStart: 2 })],
  ["song", (o, s = score) => songSample(sde, s, p, o)],
  ["langevin", (o, s = score) => langevinSample(sde, s, p, { ...o, stepsPerLevel: 2 })],
  ["pc", (o, s = score) => pcSample(sde, s, shape, o)],
  [
    "pc, Euler-Maruyama, 2 corrector steps",
    (o, s = score) => pcSample(sde, s, shape, { ...o, predictor: "euler-maruyama", correctorSteps: 2 }),
  ],
  ["ode", (o, s = score) => odeSample(sde, s, shape, o)],
];

/** The score, failing from its `from`-th call on (an engine that breaks mid-chain). */
const failingFrom = (from: number): ScoreFn => {
  let calls = 0;
  return (x, t) => {
    if (++calls >= from) throw new Error("engine failed");
    return score(x, t);
  };
};

describe("posterior samplers leak no tensors", () => {
  it.each(samplers)("%s: a finished run leaves only its result", (_, run) => {
    const before = tf.memory().numTensors;
    const x = run({ samples: 2, steps: 4, seed: 1 });
    expect(tf.memory().numTensors).toBe(before + 1);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(samplers)("%s: a run cancelled mid-way leaves nothing", (_, run) => {
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const onStep = (done: number) => {
      if (done === 2) controller.abort(new Error("cancelled"));
    };
    expect(() => run({ samples: 2, steps: 4, seed: 1, onStep, signal: controller.signal })).toThrow(
      "cancelled",
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(samplers)("%s: a run whose score fails mid-chain leaves nothing", (_, run) => {
    const before = tf.memory().numTensors;
    expect(() => run({ samples: 2, steps: 4, seed: 1 }, failingFrom(3))).toThrow("engine failed");
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("the chain runner", () => {
  it("checks for a cancel before each step and reports each step once", () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const o: ChainOptions = {
      signal: controller.signal,
      onStep: (done, total) => {
        steps.push(done);
        expect(total).toBe(5);
        if (done === 3) controller.abort(new Error("cancelled"));
      },
    };
    expect(() => odeSample(sde, score, shape, { steps: 5, seed: 1, ...o })).toThrow("cancelled");
    expect(steps).toEqual([1, 2, 3]);
  });
});

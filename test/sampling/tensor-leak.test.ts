/**
 * The posterior samplers free every tensor but the one they return, on a finished run and on a
 * cancelled one: a slice worker runs many of them in one process.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { LinearOperator } from "../../operators/linear-operator.js";
import { initBackend, tf } from "../../src/prior/backend.js";
import { VeSde } from "../../src/prior/sde.js";
import {
  ddsSample,
  langevinSample,
  songSample,
  type ConditionalOptions,
  type PosteriorProblem,
} from "../../src/sampling/conditional.js";
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

type Run = (o: ConditionalOptions) => tf.Tensor;
const samplers: [string, Run][] = [
  ["dds", (o) => ddsSample(sde, score, p, o)],
  ["dds from an estimate", (o) => ddsSample(sde, score, p, { ...o, sigmaStart: 2 })],
  ["song", (o) => songSample(sde, score, p, o)],
  ["langevin", (o) => langevinSample(sde, score, p, { ...o, stepsPerLevel: 2 })],
];

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
});

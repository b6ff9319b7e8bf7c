/**
 * Data-parallel training (src/prior/parallel.ts): 1 and 2 threads give the same update up to
 * float rounding, and a training's state written with N threads resumes with M. The workers run
 * the built dist/src/prior/train-worker.js (`npm run build`).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRng, type Rng } from "../../operators/random.js";
import { beforeAll, describe, expect, it } from "vitest";
import { FlatAdam } from "../../src/prior/adam.js";
import { initBackend, tf } from "../../src/prior/backend.js";
import { loadPrior, loadTrainState } from "../../src/prior/checkpoint.js";
import {
  flatten,
  splitBatch,
  startGradients,
  type Gradient,
  type GradientTimes,
  type StepData,
} from "../../src/prior/parallel.js";
import { makeSde } from "../../src/prior/sde.js";
import { ScoreUNet } from "../../src/prior/unet.js";
import { trainPrior, type StepTimes, type TrainOptions } from "../../src/prior/train.js";
import { runCli } from "../helpers.js";

const tiny = (
  out: string,
  steps: number,
  threads: number,
  extra: Partial<TrainOptions> = {},
): TrainOptions => ({
  modality: "mri",
  volumes: [],
  phantom: "ellipses",
  dataDescription: "ellipses phantoms",
  size: 16,
  steps,
  // Odd, so that the shares differ in size (3 + 2).
  batch: 5,
  out,
  sde: { name: "ve", sigmaMin: 0.01, sigmaMax: 5 },
  network: { channels: 8, channelMult: [1, 2], resBlocks: 1, fourierScale: 16, scaleBySigma: true },
  // The default rate. Adam divides each gradient component by its own size, so where a component
  // is near zero its rounding (which depends on the split) shows in the update: 4e-8 at most here
  // at 2e-4, 1.1e-5 at 2e-3 (measured, 3 steps, seed 4).
  lr: 2e-4,
  warmup: 1,
  ema: 0.5,
  backend: "wasm",
  seed: 4,
  threads,
  ...extra,
});

/**
 * Trains and returns the losses and every parameter (raw, EMA and Adam moments) by name (the
 * moments' names without their network instance's prefix).
 */
async function train(o: TrainOptions) {
  const losses: number[] = [];
  const profiles: StepTimes[] = [];
  await trainPrior({ ...o, onStep: (_, l) => losses.push(l), onProfile: (p) => profiles.push(p) });
  const st = loadTrainState(o.out);
  const params = new Map<string, Float32Array>();
  for (const [part, named] of Object.entries({ raw: st.raw, ema: st.ema, opt: st.optimizer }))
    for (const [name, t] of Object.entries(named))
      params.set(`${part}/${name.replace(/^unet\d+\//, "")}`, t.dataSync() as Float32Array);
  return { losses, params, profiles, info: JSON.parse(readFileSync(join(o.out, "prior.json"), "utf8")) };
}

/** A step's data for one 16 x 16 example per time in `ts`: x0 uniform, z normal. */
function randomBatch(rng: Rng, ts: number[]): StepData {
  const n = ts.length * 16 * 16;
  return {
    x0: Float32Array.from({ length: n }, () => rng.uniform()),
    z: Float32Array.from({ length: n }, () => rng.normal()),
    ts,
  };
}

/** The largest difference between two trainings' parameters, every parameter compared. */
function maxDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  let d = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    expect(y.length).toBe(x.length);
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  }
  return d;
}

beforeAll(async () => {
  await initBackend("wasm");
});

describe("data-parallel training", () => {
  it("splits a batch into contiguous shares differing in size by at most one", () => {
    const data = {
      x0: Float32Array.from({ length: 10 }, (_, i) => i),
      z: new Float32Array(10),
      ts: [1, 2, 3, 4, 5],
    };
    const shares = splitBatch(data, 2);
    expect(shares.map((s) => s.ts)).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(Array.from(shares[1].x0)).toEqual([6, 7, 8, 9]);
  });

  it("the gradient of a batch is the sum of its shares' gradients on 2 and 3 threads", async () => {
    const o = tiny("", 1, 1);
    const net = new ScoreUNet(o.network, makeSde(o.sde), 2);
    const rng = createRng(5);
    const draw = () => randomBatch(rng, [0.1, 0.3, 0.5, 0.7, 0.9]);
    // compute() hands the batch's buffers to the workers: each call gets a copy.
    const copy = (d: ReturnType<typeof draw>) => ({ x0: d.x0.slice(), z: d.z.slice(), ts: d.ts });
    // Two batches at two points of the weights, as two steps see them.
    const w0 = flatten(net.trainable().map(([, v]) => v));
    const batches = [
      { data: draw(), weights: w0 },
      { data: draw(), weights: w0.map((w) => 0.9 * w + 0.01 * rng.normal()) },
    ];
    const here: Gradient[] = [];
    for (const b of batches) here.push(await startGradients(1, net, "wasm").compute(copy(b.data), b.weights));
    const scale = here[0].grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0);
    expect(scale).toBeGreaterThan(0);
    expect(Math.abs(here[1].loss - here[0].loss)).toBeGreaterThan(1e-3);
    for (const threads of [2, 3]) {
      const workers = startGradients(threads, net, "wasm");
      try {
        // One after the other on the same workers: each step's weights are the ones it was given
        // (the workers read them from the buffer they share with this thread).
        for (const [k, b] of batches.entries()) {
          const times: GradientTimes = { shares: [], toWorker: [], back: [], sum: 0 };
          const there = await workers.compute(copy(b.data), b.weights, times);
          // This thread computed the first share, a worker each of the others.
          expect(times.shares).toHaveLength(threads);
          expect(times.toWorker).toHaveLength(threads - 1);
          for (const t of times.shares) expect(t.pass).toBeGreaterThan(0);
          expect(there.loss).toBeCloseTo(here[k].loss, 5);
          const d = there.grad.reduce((m, g, i) => Math.max(m, Math.abs(g - here[k].grad[i])), 0);
          expect(d / scale).toBeLessThan(1e-5);
        }
      } finally {
        await workers.close();
      }
    }
    net.dispose();
  });

  it("reuses its buffers step after step and leaves no tensor behind", async () => {
    const o = tiny("", 1, 1);
    const net = new ScoreUNet(o.network, makeSde(o.sde), 3);
    const rng = createRng(6);
    const draw = () => randomBatch(rng, [0.2, 0.4, 0.6, 0.8]);
    const weights = flatten(net.trainable().map(([, v]) => v));
    for (const threads of [1, 2]) {
      const gradients = startGradients(threads, net, "wasm");
      try {
        const first = await gradients.compute(draw(), weights);
        const losses = [first.loss];
        const tensors = tf.memory().numTensors;
        for (let k = 0; k < 2; k++) {
          const g = await gradients.compute(draw(), weights);
          // The same array each step, holding this step's gradient.
          expect(g.grad).toBe(first.grad);
          losses.push(g.loss);
        }
        expect(new Set(losses).size).toBe(3);
        expect(tf.memory().numTensors).toBe(tensors);
      } finally {
        await gradients.close();
      }
    }
    net.dispose();
  });

  // About 15 s on a shared 2-core machine (load 3): three trainings of 3 and 2 steps, two of them
  // starting two workers.
  it(
    "1 and 2 threads give the same update to 1e-5; a state written with N threads resumes with M",
    { timeout: 180_000 },
    async () => {
      const [d1, d2] = [0, 1].map(() => mkdtempSync(join(tmpdir(), "scorerecon-dp-")));
      const initial = await train(tiny(mkdtempSync(join(tmpdir(), "scorerecon-dp-")), 1, 1, { lr: 0 }));
      const one = await train(tiny(d1, 3, 1));
      const two = await train(tiny(d2, 3, 2));
      expect([one.info.threads, two.info.threads]).toEqual([1, 2]);
      // The steps moved the weights by far more than the tolerance (Adam: up to 3 lr = 6e-4), so
      // agreeing means something.
      const raw = (m: Map<string, Float32Array>) => new Map([...m].filter(([k]) => k.startsWith("raw/")));
      expect(maxDifference(raw(initial.params), raw(one.params))).toBeGreaterThan(3e-4);
      expect(two.losses).toHaveLength(3);
      // Where each step's time went: this thread's share and one worker's.
      expect(two.profiles).toHaveLength(3);
      for (const p of two.profiles) {
        expect(p.shares.map((t) => t.pass > 0)).toEqual([true, true]);
        expect(p.toWorker).toHaveLength(1);
        expect(p.step).toBeGreaterThanOrEqual(p.shares[0].pass + p.draw);
      }
      two.losses.forEach((l, i) => expect(l).toBeCloseTo(one.losses[i], 5));
      expect(maxDifference(one.params, two.params)).toBeLessThan(1e-5);
      // Resumed with the other thread count: still the same training.
      const oneThenTwo = await train(tiny(d1, 5, 2, { resume: true }));
      const twoThenOne = await train(tiny(d2, 5, 1, { resume: true }));
      expect([oneThenTwo.info.threads, twoThenOne.info.threads]).toEqual([2, 1]);
      expect(maxDifference(oneThenTwo.params, twoThenOne.params)).toBeLessThan(1e-5);
      expect(loadPrior(d1).info.steps).toBe(5);
    },
  );

  // A worker left running would keep the process alive: the CLI sets its exit code and returns.
  it("Ctrl-C saves a checkpoint and stops the workers: the process exits", { timeout: 120_000 }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), "scorerecon-dp-")), "prior");
    const bin = fileURLToPath(new URL("../../dist/src/cli/bin.js", import.meta.url));
    const child = spawn(
      process.execPath,
      [
        bin,
        "train",
        "--modality",
        "mri",
        "--phantom",
        "ellipses",
        "--size",
        "8",
        "--steps",
        "100000",
        "--batch",
        "2",
        "--threads",
        "2",
        "--channels",
        "4",
        "--channel-mult",
        "1",
        "--grid",
        "0",
        "--checkpoint-every",
        "3",
        "--backend",
        "wasm",
        "--out",
        out,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.resume();
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      // The first checkpoint: training is under way on its workers.
      while (!existsSync(join(out, "train-state.json")) && child.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    } finally {
      // A failing test leaves no training behind.
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    const [, step] = stdout.match(/stopped at step (\d+)/)!;
    expect(loadPrior(out).info).toMatchObject({ steps: Number(step), threads: 2 });
  });

  it("train --threads: recorded in prior.json; out of range or above the batch, a one-line error", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "scorerecon-dp-")), "prior");
    const train = (...flags: string[]) =>
      runCli(
        "train",
        "--modality",
        "mri",
        "--phantom",
        "ellipses",
        "--size",
        "8",
        "--steps",
        "1",
        "--channels",
        "4",
        "--channel-mult",
        "1",
        "--grid",
        "0",
        "--backend",
        "wasm",
        ...flags,
        "--out",
        out,
      );
    for (const [flags, message] of [
      [["--threads", "0"], "--threads must be >= 1, got '0'"],
      [["--threads", "65"], "--threads must be <= 64, got '65'"],
      [["--threads", "1.5"], "--threads must be an integer, got '1.5'"],
      [
        ["--threads", "3", "--batch", "2"],
        "--threads 3 is more than --batch 2: each thread needs at least one image of the batch",
      ],
    ] as const) {
      const r = await train(...flags);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`scorerecon: error: ${message}\n`);
    }
    const r = await train("--threads", "2", "--batch", "2");
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, "prior.json"), "utf8")).threads).toBe(2);
  });
});

describe("FlatAdam", () => {
  it("steps as tf.train.adam does, and reads and writes its state's layout", async () => {
    const rng = createRng(9);
    const vars = [tf.variable(tf.randomNormal([3, 4], 0, 1, "float32", 1)), tf.variable(tf.zeros([5]))];
    const grads = () => vars.map((v) => Float32Array.from({ length: v.size }, () => rng.normal() * 1e-3));
    const reference = tf.train.adam(1e-2, 0.9, 0.999, 1e-8);
    const flat = new FlatAdam(17);
    const params = flatten(vars);
    const step = (lr: number) => {
      const g = grads();
      (reference as unknown as { learningRate: number }).learningRate = lr;
      reference.applyGradients(vars.map((v, k) => ({ name: v.name, tensor: tf.tensor(g[k], v.shape) })));
      flat.step(params, Float32Array.from([...g[0], ...g[1]]), lr);
    };
    for (const lr of [1e-2, 2e-2, 5e-3]) step(lr);
    const close = (a: Float32Array, b: Float32Array) => a.every((x, i) => Math.abs(x - b[i]) < 1e-6);
    expect(close(params, flatten(vars))).toBe(true);
    // Its state in tf.train.adam's layout: the same names in the same order, the same values.
    const ours = flat.named(vars);
    const theirs = await reference.getWeights();
    expect(Object.keys(ours)).toEqual(theirs.map((w) => w.name));
    for (const w of theirs)
      expect(close(ours[w.name].dataSync() as Float32Array, w.tensor.dataSync() as Float32Array)).toBe(true);
    // A state tf.train.adam wrote goes on the same.
    const resumed = new FlatAdam(17);
    resumed.load(Object.fromEntries(theirs.map((w) => [w.name, w.tensor])), vars, "test");
    expect(resumed.iterations).toBe(3);
    const g = grads();
    const p1 = params.slice();
    flat.step(params, Float32Array.from([...g[0], ...g[1]]), 1e-2);
    resumed.step(p1, Float32Array.from([...g[0], ...g[1]]), 1e-2);
    expect(close(p1, params)).toBe(true);
    expect(() => resumed.load(ours, [vars[0]], "x")).toThrow(
      /cannot resume from x: its optimizer state does not match/,
    );
  });

  it("resumes the shipped CT prior's training state", () => {
    const info = loadPrior("models/ct").info;
    const net = new ScoreUNet(info.network, makeSde(info.sde));
    const vars = net.trainable().map(([, v]) => v);
    const adam = new FlatAdam(vars.reduce((n, v) => n + v.size, 0));
    adam.load(loadTrainState("models/ct").optimizer, vars, "models/ct");
    expect(adam.iterations).toBe(info.steps);
    expect(adam.v.some((x) => x > 0)).toBe(true);
    net.dispose();
  });
});

/**
 * `npm run bench:prior`: data-parallel training steps per second on 1 and 2 threads
 * (src/prior/parallel.ts), their ratio and where a step's time went, for the shipped CT prior's
 * training, the shipped MRI prior's and the MRI network on larger shares (batch 8, crop 128), then training steps and network evaluations per second of
 * the default network on this machine's backend. Numbers only.
 * Usage: node dist/bench/prior.js [--channels 32] [--backend wasm] [--threads 1,2] [--steps 8]
 * [--settings ct,mri,mri-128] [--parallel-only]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/package-root.js";
import { initBackend, tf } from "../src/prior/backend.js";
import type { PriorInfo } from "../src/prior/checkpoint.js";
import { shareGradient } from "../src/prior/parallel.js";
import { makeSde, VeSde, type SdeConfig } from "../src/prior/sde.js";
import { trainPrior, type StepTimes } from "../src/prior/train.js";
import { DEFAULT_UNET, ScoreUNet, type UNetConfig } from "../src/prior/unet.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

interface Setting {
  /** Its name in --settings. */
  id: string;
  name: string;
  modality: "mri" | "ct";
  phantom: "ct-body" | "brain";
  network: UNetConfig;
  sde: SdeConfig;
  batch: number;
  size: number;
  warm: number;
  timed: number;
}

/** Where a step's time went (ms, the timed steps' mean), as printed. */
const COLUMNS = {
  draw: "next batch",
  ownAssign: "own: weights",
  ownPass: "pass",
  ownCopy: "copy",
  workerAssign: "worker: weights",
  workerPass: "pass",
  workerCopy: "copy",
  toWorker: "to worker",
  back: "back",
  wait: "wait",
  update: "sum+update",
  step: "step",
} as const;

interface Run {
  rate: number;
  cpu: number;
  busy: number;
  times: Record<keyof typeof COLUMNS, number>;
}

const average = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);

/**
 * One training of `setting` on `threads` threads: steps per second over the timed steps (after
 * the untimed ones: the workers' start, the first allocations), the CPU time a step costs (all
 * threads) and the cores the training kept busy — on a machine that other work keeps busy,
 * steps/s measures the share of the cores this process got — and where a step's time went.
 */
async function trainRun(setting: Setting, threads: number, backend: string): Promise<Run> {
  const out = mkdtempSync(join(tmpdir(), "scorerecon-bench-prior-"));
  const at: { wall: number; cpu: number }[] = [];
  const profiles: StepTimes[] = [];
  await trainPrior({
    modality: setting.modality,
    volumes: [],
    phantom: setting.phantom,
    dataDescription: `${setting.phantom} phantoms`,
    size: setting.size,
    batch: setting.batch,
    steps: setting.warm + setting.timed,
    out,
    sde: setting.sde,
    network: setting.network,
    checkpointEvery: 1e9,
    backend,
    threads,
    onProfile: (p) => profiles.push(p),
    onStep: () => {
      const c = process.cpuUsage();
      at.push({ wall: performance.now() / 1000, cpu: (c.user + c.system) / 1e6 });
    },
  });
  rmSync(out, { recursive: true, force: true });
  const [a, b] = [at[setting.warm - 1], at[setting.warm + setting.timed - 1]];
  const timed = profiles.slice(setting.warm);
  const mean = (f: (p: StepTimes) => number) => average(timed.map(f));
  return {
    rate: setting.timed / (b.wall - a.wall),
    cpu: (b.cpu - a.cpu) / setting.timed,
    busy: (b.cpu - a.cpu) / (b.wall - a.wall),
    times: {
      draw: mean((p) => p.draw),
      ownAssign: mean((p) => p.shares[0].assign),
      ownPass: mean((p) => p.shares[0].pass),
      ownCopy: mean((p) => p.shares[0].copy),
      workerAssign: mean((p) => p.shares[1]?.assign ?? 0),
      workerPass: mean((p) => p.shares[1]?.pass ?? 0),
      workerCopy: mean((p) => p.shares[1]?.copy ?? 0),
      toWorker: mean((p) => average(p.toWorker)),
      back: mean((p) => average(p.back)),
      wait: mean((p) => p.wait),
      update: mean((p) => p.sum + p.update),
      step: mean((p) => p.step),
    },
  };
}

/**
 * TensorFlow.js kernels in one forward and backward pass of `setting`'s network over `share`
 * images (counted with tf.profile; the count does not depend on the share, each kernel costs a
 * dispatch whatever its size).
 */
async function kernelsPerPass(setting: Setting, share: number): Promise<number> {
  const net = new ScoreUNet(setting.network, makeSde(setting.sde), 1);
  const vars = net.trainable().map(([, v]) => v);
  const n = share * setting.size * setting.size;
  const x0 = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const data = {
    x0,
    z: x0.map((v) => 1 - v),
    ts: Array.from({ length: share }, (_, i) => (i + 1) / (share + 1)),
  };
  const out = new Float32Array(vars.reduce((k, v) => k + v.size, 0));
  const { kernels } = await tf.profile(() => void shareGradient(net, vars, data, n, out));
  net.dispose();
  return kernels.length;
}

/**
 * Data-parallel training (src/prior/parallel.ts) of `setting` on each thread count, the counts
 * run in the order A B B A (a machine whose load drifts slows both alike): steps/s, CPU per step,
 * where a step's time went, and the ratio of the last count to the first.
 */
async function dataParallel(setting: Setting, threads: number[], backend: string): Promise<void> {
  const runs = new Map<number, Run[]>(threads.map((n) => [n, []]));
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  const before = load();
  for (const n of [...threads, ...[...threads].reverse()])
    runs.get(n)!.push(await trainRun(setting, n, backend));
  const { channels: c, channelMult, attention } = setting.network;
  console.log(
    `data-parallel training, ${setting.name} network ${c} x [${channelMult.join(",")}]${attention ? " + attention" : ""}, batch ${setting.batch}, crop ${setting.size}, ${setting.phantom} phantoms, ${setting.timed} steps timed after ${setting.warm}, each thread count run twice (A B B A), means:`,
  );
  console.log(
    `  TensorFlow.js kernels per forward and backward pass (any share): ${await kernelsPerPass(setting, 1)}`,
  );
  const keys = Object.keys(COLUMNS) as (keyof typeof COLUMNS)[];
  console.log(
    `  threads  steps/s  CPU s/step  cores busy | ms per step: ${keys.map((k) => COLUMNS[k]).join(" | ")}`,
  );
  const rows = threads.map((n) => {
    const r = runs.get(n)!;
    const row = {
      threads: n,
      rate: average(r.map((x) => x.rate)),
      cpu: average(r.map((x) => x.cpu)),
      busy: average(r.map((x) => x.busy)),
    };
    const cells = keys.map((k) =>
      average(r.map((x) => x.times[k]))
        .toFixed(0)
        .padStart(COLUMNS[k].length),
    );
    console.log(
      `  ${String(n).padStart(7)}  ${row.rate.toFixed(2).padStart(7)}  ${row.cpu.toFixed(3).padStart(10)}  ${row.busy.toFixed(2).padStart(10)} |              ${cells.join(" | ")}`,
    );
    return row;
  });
  const [first, last] = [rows[0], rows[rows.length - 1]];
  console.log(
    `  ${last.threads} threads / ${first.threads} thread${first.threads > 1 ? "s" : ""}: ${(last.rate / first.rate).toFixed(2)}x steps/s, ${(last.cpu / first.cpu).toFixed(2)}x CPU per step (load average ${before} before, ${load()} after; ${availableParallelism()} cores)`,
  );
}

async function main() {
  const backend = await initBackend(arg("backend", "auto") as never, console.log);
  const threads = arg("threads", "1,2").split(",").map(Number);
  const timed = Number(arg("steps", "8"));
  const ct = JSON.parse(readFileSync(join(packageRoot(), "models/ct/prior.json"), "utf8")) as PriorInfo;
  const mri = JSON.parse(readFileSync(join(packageRoot(), "models/mri/prior.json"), "utf8")) as PriorInfo;
  // The shipped CT prior's training (models/README.md), then the shipped MRI prior's: a deeper
  // network with attention on 4 times the pixels, so each thread's share of a step is larger.
  // Untimed steps until each thread's code is compiled: V8 optimises the JavaScript and tiers
  // the wasm kernels up on background threads for the first ~12 CT steps (~4 MRI ones), which
  // on 2 cores takes CPU time from the training threads (measured from /proc per-thread times:
  // those threads' CPU per step fell from ~160 ms over CT steps 5-8 to ~60 ms from step 17 on, 2
  // threads).
  const shippedMri: Setting = {
    id: "mri",
    name: "shipped MRI",
    modality: "mri",
    phantom: "brain",
    network: mri.network,
    sde: mri.sde,
    batch: 4,
    size: 96,
    warm: 5,
    timed: Math.ceil(timed / 2),
  };
  const settings: Setting[] = [
    {
      id: "ct",
      name: "shipped CT",
      modality: "ct",
      phantom: "ct-body",
      network: ct.network,
      sde: ct.sde,
      batch: 8,
      size: 48,
      warm: 12,
      timed,
    },
    shippedMri,
    // Larger shares: each thread's pass costs more than its images' part of the whole batch's
    // (every kernel's dispatch, whatever its size), so bigger crops and batches scale better.
    { ...shippedMri, id: "mri-128", batch: 8, size: 128, warm: 3 },
  ];
  const chosen = arg("settings", "ct,mri,mri-128").split(",");
  for (const s of settings.filter((s) => chosen.includes(s.id))) await dataParallel(s, threads, backend);
  if (process.argv.includes("--parallel-only")) return;
  const channels = Number(arg("channels", String(DEFAULT_UNET.channels)));
  const config = { ...DEFAULT_UNET, channels };
  const net = new ScoreUNet(config, new VeSde(0.01, 50));
  console.log(
    `score U-Net channels ${channels} x [${config.channelMult}], ${net.parameterCount()} parameters, backend ${backend}`,
  );
  const vars = net.trainable().map(([, v]) => v);
  const opt = tf.train.adam(1e-4);
  for (const [size, batch] of [
    [128, 4],
    [256, 1],
  ]) {
    const x = tf.randomNormal([batch, size, size, 1]) as tf.Tensor4D;
    const t = Array.from({ length: batch }, (_, i) => (i + 0.5) / batch);
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(
          () => tf.mean(tf.square(tf.add(net.apply(x, t), x))) as tf.Scalar,
          vars,
        );
        opt.applyGradients(grads as never);
      });
    step();
    const n = 3;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) step();
    const s = (performance.now() - t0) / 1000 / n;
    console.log(
      `training ${size}x${size} batch ${batch}: ${(1 / s).toFixed(2)} steps/s (${(s * 1000).toFixed(0)} ms/step)`,
    );
    x.dispose();
  }
  for (const size of [128, 256]) {
    const x = tf.randomNormal([1, size, size, 1]) as tf.Tensor4D;
    const evalOnce = async () => {
      const y = tf.tidy(() => net.apply(x, [0.5]));
      await y.data();
      y.dispose();
    };
    await evalOnce();
    const n = 5;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await evalOnce();
    const s = (performance.now() - t0) / 1000 / n;
    console.log(
      `network evaluations ${size}x${size}: ${(1 / s).toFixed(2)} NFE/s (${(s * 1000).toFixed(0)} ms each)`,
    );
    x.dispose();
  }
}

await main();

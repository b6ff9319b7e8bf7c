/**
 * `npm run bench:prior`: data-parallel training steps per second of the shipped CT network on 1
 * and 2 threads (src/prior/parallel.ts) and their ratio, then training steps and network
 * evaluations per second of the default network on this machine's backend. Numbers only.
 * Usage: node dist/bench/prior.js [--channels 32] [--backend wasm] [--threads 1,2] [--steps 8]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/package-root.js";
import { initBackend, tf } from "../src/prior/backend.js";
import type { PriorInfo } from "../src/prior/checkpoint.js";
import { VeSde } from "../src/prior/sde.js";
import { trainPrior } from "../src/prior/train.js";
import { DEFAULT_UNET, ScoreUNet } from "../src/prior/unet.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

/**
 * Steps per second of `scorerecon train` with the shipped CT prior's network at batch 8, crop 48
 * on ct-body phantoms, for each thread count: `steps` timed steps after 3 untimed ones (the
 * workers' start, the first allocations). Beside it the CPU time a step costs (all threads) and
 * the cores the training kept busy: on a machine that other work keeps busy, steps/s measures the
 * share of the cores this process got; CPU per step what the threads cost (equal per step on 1 and
 * 2 threads: no parallel overhead).
 */
async function dataParallel(backend: string): Promise<void> {
  const ct = JSON.parse(readFileSync(join(packageRoot(), "models/ct/prior.json"), "utf8")) as PriorInfo;
  const threads = arg("threads", "1,2").split(",").map(Number);
  const timed = Number(arg("steps", "8"));
  const warm = 3;
  const rows: { threads: number; rate: number; cpu: number; busy: number }[] = [];
  for (const n of threads) {
    const out = mkdtempSync(join(tmpdir(), "scorerecon-bench-prior-"));
    const at: { wall: number; cpu: number }[] = [];
    await trainPrior({
      modality: "ct",
      volumes: [],
      phantom: "ct-body",
      dataDescription: "ct-body phantoms",
      size: 48,
      batch: 8,
      steps: warm + timed,
      out,
      sde: ct.sde,
      network: ct.network,
      checkpointEvery: 1e9,
      backend,
      threads: n,
      onStep: () => {
        const c = process.cpuUsage();
        at.push({ wall: performance.now() / 1000, cpu: (c.user + c.system) / 1e6 });
      },
    });
    rmSync(out, { recursive: true, force: true });
    const [a, b] = [at[warm - 1], at[warm + timed - 1]];
    rows.push({
      threads: n,
      rate: timed / (b.wall - a.wall),
      cpu: (b.cpu - a.cpu) / timed,
      busy: (b.cpu - a.cpu) / (b.wall - a.wall),
    });
  }
  const [c, m] = [ct.network.channels, ct.network.channelMult.join(",")];
  console.log(
    `data-parallel training, shipped CT network ${c} x [${m}], batch 8, crop 48, ct-body phantoms, ${timed} steps timed after ${warm}:`,
  );
  console.log("  threads  steps/s  CPU s/step  cores busy");
  for (const r of rows)
    console.log(
      `  ${String(r.threads).padStart(7)}  ${r.rate.toFixed(2).padStart(7)}  ${r.cpu.toFixed(3).padStart(10)}  ${r.busy.toFixed(2).padStart(10)}`,
    );
  const [first, lastRow] = [rows[0], rows[rows.length - 1]];
  console.log(
    `  ratio ${lastRow.threads}/${first.threads}: ${(lastRow.rate / first.rate).toFixed(2)}x steps/s, ${(lastRow.cpu / first.cpu).toFixed(2)}x CPU per step (load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}, ${availableParallelism()} cores)`,
  );
}

async function main() {
  const backend = await initBackend(arg("backend", "auto") as never, console.log);
  await dataParallel(backend);
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

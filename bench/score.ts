/**
 * `npm run bench:score`: the default `score` method on 256x256 slices.
 * 1. Network evaluations per second of each setting's shipped prior on both engines, in one run on
 *    the same inputs (batch 2, 256x256, one thread: ONNX Runtime with 1 intra-op thread, tfjs-wasm
 *    is single-threaded), the engines alternating round by round so that a busy machine slows
 *    both alike; and their ratio, from wall time and from CPU time (process.cpuUsage: on a shared
 *    machine the CPU seconds an evaluation used are steadier than its wall time).
 * 2. The method end to end through the pipeline (simulation excluded) on the chosen engine: seconds
 *    per slice on one core (1 worker, 1 thread per evaluation; wall and CPU seconds), and slices
 *    per minute with 1 and 2 worker processes. Numbers only; nothing passes or fails on time.
 * Usage: node dist/bench/score.js [--slices 2] [--method score:steps=25] [--settings mri-4x,ct-23-views]
 *        [--rounds 6] [--engine auto|onnx|tfjs] [--skip-pipeline]
 */
import { generatePhantom } from "../phantoms/index.js";
import { makeVolume } from "../src/image/volume.js";
import { tf } from "../src/prior/backend.js";
import { loadPrior } from "../src/prior/checkpoint.js";
import {
  engineFor,
  initEngine,
  setEngineThreads,
  threadsPerWorker,
  type EngineName,
} from "../src/prior/engine.js";
import type { Acquisition } from "../src/recon/acquisition.js";
import { parseMethods } from "../src/recon/methods.js";
import { reconstruct, slicePoolSize } from "../src/recon/reconstruct.js";
import { defaultPriorPath } from "../src/recon/score-methods.js";
import { STANDARD_SETTINGS } from "../src/recon/evaluate.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

const size = 256;
const batch = 2;

/** Evaluations per second of each engine on the prior, same inputs, engines alternating per round. */
function compareEngines(modality: "mri" | "ct", rounds: number): void {
  const prior = loadPrior(defaultPriorPath(modality));
  const engines: EngineName[] = ["onnx", "tfjs"];
  // The sampler's inputs: noise of the level's sigma around an image, at times across the schedule.
  const ts = [0.9, 0.6, 0.3, 0.05];
  const image = generatePhantom(modality === "mri" ? "brain" : "ct-body", size, 7).data;
  const inputs = ts.map((t, k) =>
    tf.tidy(() => {
      const x0 = tf.tensor4d(new Float32Array([...image, ...image]), [batch, size, size, 1]);
      return tf.add(
        x0,
        tf.mul(tf.randomNormal(x0.shape, 0, 1, "float32", 11 + k), prior.net.sde.std(t)),
      ) as tf.Tensor4D;
    }),
  );
  const evaluate = (name: EngineName, k: number) =>
    tf.tidy(
      () =>
        void engineFor(prior, name)
          .score(inputs[k % ts.length], [ts[k % ts.length], ts[k % ts.length]])
          .dataSync(),
    );
  for (const name of engines) evaluate(name, 0); // warm-up: graph build, session, kernels
  const wall: Record<string, number> = { onnx: 0, tfjs: 0 };
  const cpu: Record<string, number> = { onnx: 0, tfjs: 0 };
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const round: Record<string, number> = {};
    for (const name of r % 2 ? [...engines].reverse() : engines) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      evaluate(name, r);
      const c = process.cpuUsage(c0);
      round[name] = (performance.now() - t0) / 1000;
      wall[name] += round[name];
      cpu[name] += (c.user + c.system) / 1e6;
    }
    ratios.push(round.tfjs / round.onnx);
  }
  ratios.sort((a, b) => a - b);
  const line = (name: string) =>
    `${name} ${(rounds / wall[name]).toFixed(2)} evaluations/s (${((1000 * wall[name]) / rounds).toFixed(0)} ms wall, ${((1000 * cpu[name]) / rounds).toFixed(0)} ms CPU)`;
  console.log(
    `${modality} prior, ${size}x${size}, batch ${batch}, 1 thread, ${rounds} rounds: ${line("onnx")}, ${line("tfjs")}: ` +
      `onnx/tfjs ${(wall.tfjs / wall.onnx).toFixed(2)}x by wall time (per round ${ratios[0].toFixed(2)}-${ratios[ratios.length - 1].toFixed(2)}x, median ${ratios[Math.floor(ratios.length / 2)].toFixed(2)}x), ` +
      `${(cpu.tfjs / cpu.onnx).toFixed(2)}x by CPU time`,
  );
  tf.dispose(inputs);
}

async function main() {
  const engine = await initEngine(arg("engine", "auto"), console.log);
  const slices = Number(arg("slices", "2"));
  const rounds = Number(arg("rounds", "6"));
  const names = arg("settings", "mri-4x,ct-23-views").split(",");
  const settings = names.map((name) => {
    const setting = STANDARD_SETTINGS.find((s) => s.name === name);
    if (!setting) {
      console.error(
        `bench: unknown setting '${name}' (known: ${STANDARD_SETTINGS.map((s) => s.name).join(", ")})`,
      );
      process.exit(2);
    }
    return setting;
  });
  setEngineThreads(1);
  if (engine === "onnx") for (const m of new Set(settings.map((s) => s.modality))) compareEngines(m, rounds);
  else console.log("bench: ONNX Runtime is not in use; no engine comparison");
  if (process.argv.includes("--skip-pipeline")) return;
  for (const setting of settings) {
    const kind = setting.modality === "mri" ? "brain" : "ct-body";
    const data = new Float32Array(slices * size * size);
    for (let k = 0; k < slices; k++)
      data.set(generatePhantom(kind, size, 3_000_000 + k).data, k * size * size);
    const volume = makeVolume(slices, size, size, data, { modality: kind === "brain" ? "MR" : "CT" });
    const acquisition: Acquisition = setting.acquisition(size, size);
    const methods = parseMethods(arg("method", "score"), acquisition);
    const { steps, samples } = methods[0].params;
    // dds evaluates the network once per step (on a batch of `samples`); the TV start is not one.
    const nfe = Number(steps) * slices;
    for (const workers of [1, 2]) {
      // One core per worker: 1 thread per evaluation in this process, cores / 2 in each of 2 workers.
      setEngineThreads(1);
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const r = await reconstruct({ acquisition, methods, volume, workers });
      const c = process.cpuUsage(c0);
      const wall = (performance.now() - t0) / 1000;
      // With 1 worker the slices run in this process, and every CPU second is theirs; worker
      // processes' CPU time is not this process's, so it is not reported.
      const cpu =
        workers === 1 ? `${((c.user + c.system) / 1e6 / slices).toFixed(1)} CPU s` : "CPU in the workers";
      const perSlice = r.results[0].seconds / slices;
      const threads = workers === 1 ? 1 : threadsPerWorker(slicePoolSize(workers, slices, methods.length));
      console.log(
        `${setting.name} ${methods[0].name} (${engine}, steps ${steps}, samples ${samples}), ${slices} slices, ${workers} worker(s) x ${threads} thread(s): ` +
          `${perSlice.toFixed(1)} s/slice of compute (${cpu}), ${(wall / slices).toFixed(1)} s/slice wall, ` +
          `${((60 * slices) / wall).toFixed(2)} slices/min, ${(nfe / r.results[0].seconds).toFixed(2)} network evaluations/s ` +
          `(batch of ${samples}), PSNR ${r.results[0].metrics!.psnr.toFixed(2)} dB`,
      );
    }
  }
}

await main();

/**
 * The process a training task runs in (train-task.ts): reads the stored series, calls trainPrior
 * with resume on (a checkpoint left by an earlier run is continued), reports every step and every
 * checkpoint (with a small grid of samples drawn from it) to its parent, and stops within a step
 * when told to cancel, after a checkpoint. It exits when its parent goes away (a killed server or
 * worker), leaving the last checkpoint for whoever runs the task next.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { toErrorMessage } from "../errors.js";
import { montage } from "../image/montage.js";
import { keepSlices, type Volume } from "../image/volume.js";
import { encodePng } from "../io/png.js";
import { readStoredVolume } from "../io/stored-volume.js";
import { initBackend } from "../prior/backend.js";
import { loadPrior } from "../prior/checkpoint.js";
import { initEngine } from "../prior/engine.js";
import { trainPrior } from "../prior/train.js";
import { samplePrior } from "../sampling/prior-sample.js";
import { taskPath, type TrainProcessMessage, type TrainTask } from "./train-task.js";

const send = (m: TrainProcessMessage) => void process.send?.(m);
/** The last message, sent before the channel closes (which ends this process). */
const last = (m: TrainProcessMessage) =>
  new Promise<void>((done) => process.send?.(m, undefined, {}, () => done()) ?? done()).then(() =>
    process.disconnect?.(),
  );
const stop = new AbortController();
process.on("disconnect", () => process.exit(0));

async function run(task: TrainTask, dataDir: string): Promise<void> {
  const backend = await initBackend();
  const out = taskPath(dataDir, task.out);
  const volumes: Volume[] = task.data.map(({ volume, slices }) => {
    const v = readStoredVolume(taskPath(dataDir, volume));
    if (!slices) return v;
    const [a, b] = slices;
    return keepSlices(
      v,
      Array.from({ length: b - a }, (_, k) => a + k),
    );
  });
  const state = join(out, "train-state.json");
  send({
    kind: "start",
    step: existsSync(state) ? (JSON.parse(readFileSync(state, "utf8")) as { step: number }).step : 0,
  });
  const grid = async (step: number) => {
    if (task.grid.count === 0) return send({ kind: "checkpoint", step });
    const t0 = performance.now();
    await initEngine("tfjs");
    const prior = loadPrior(out);
    const images = samplePrior(prior, {
      count: task.grid.count,
      size: task.size,
      steps: task.grid.steps,
      sampler: "pc",
      seed: 0,
    });
    prior.net.dispose();
    const png = encodePng(montage(images), { min: 0, max: 1 }).toString("base64");
    send({ kind: "checkpoint", step, grid: png, gridSeconds: (performance.now() - t0) / 1000 });
  };
  const r = await trainPrior({
    modality: task.modality,
    volumes,
    sources: task.data.map((d) => ({
      source: d.source,
      ...(d.slices ? { slices: `${d.slices[0]}:${d.slices[1]}` } : {}),
    })),
    augment: task.augment,
    dataDescription: task.dataDescription,
    size: task.size,
    steps: task.steps,
    batch: task.batch,
    out,
    resume: true,
    init: task.init && taskPath(dataDir, task.init.path, task.init.root),
    sde: task.sde,
    network: task.network,
    lr: task.lr,
    warmup: task.warmup,
    checkpointEvery: task.checkpointEvery,
    seed: task.seed,
    backend,
    threads: 1,
    command: task.command,
    signal: stop.signal,
    onStep: (step, loss) => send({ kind: "step", step, loss }),
    onCheckpoint: grid,
  });
  await last({ kind: "done", outcome: r });
}

process.on("message", (m: { kind: "start"; task: TrainTask; dataDir: string } | { kind: "cancel" }) => {
  if (m.kind === "cancel") return stop.abort();
  run(m.task, m.dataDir).catch((e: unknown) => last(toErrorMessage(e)));
});

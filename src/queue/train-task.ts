/**
 * A training of a prior as one task: plain data (it travels through Redis as JSON), its files named
 * relative to a data folder that every machine may mount where it likes — the stored series it
 * learns from (src/io/stored-volume.ts), its checkpoint folder, and the prior it starts from. It
 * runs in a process of its own (train-process.ts) through `runTrainTask`, on the server (embedded)
 * or on a queue worker (src/queue/worker.ts), and always through trainPrior (src/prior/train.ts),
 * the implementation `scorerecon train` uses. It resumes from its checkpoint whenever there is one,
 * so a task run again after a crash, a kill or on another worker goes on where it stopped, and one
 * run again once complete only rewrites its last checkpoint.
 */
import { fork } from "node:child_process";
import { isAbsolute, relative, resolve } from "node:path";
import { Cancelled, fromErrorMessage, type ErrorMessage } from "../errors.js";
import { compiledModule, packageRoot } from "../package-root.js";
import type { Augmentation } from "../prior/data.js";
import type { SdeConfig } from "../prior/sde.js";
import type { UNetConfig } from "../prior/unet.js";

/** The BullMQ queue of training tasks. */
export const TRAIN_QUEUE = "scorerecon-trainings";

export interface TrainTask {
  /** The checkpoint folder, relative to the data folder. */
  out: string;
  modality: "mri" | "ct";
  /** Each stored series (its files without extension, relative to the data folder), the slices kept (end exclusive), and what prior.json records for it. */
  data: { volume: string; slices?: [number, number]; source: string }[];
  dataDescription: string;
  size: number;
  steps: number;
  batch: number;
  seed: number;
  lr: number;
  warmup: number;
  checkpointEvery: number;
  network: UNetConfig;
  sde: SdeConfig;
  augment: Augmentation[];
  /** The prior it starts from: shipped (models/<name>) or in the data folder. */
  init?: { root: "package" | "data"; path: string };
  /** Unconditional samples drawn at each checkpoint (0: none) and the sampler's steps. */
  grid: { count: number; steps: number };
  /** What prior.json records as the command. */
  command: string;
}

/** What a training reports while it runs. */
export type TrainEvent =
  /** A run of the task starts, at this step (0, or its checkpoint's). */
  | { kind: "start"; step: number }
  | { kind: "step"; step: number; loss: number }
  /** A checkpoint is written at `step`; `grid`: a PNG of samples from it, base64. */
  | { kind: "checkpoint"; step: number; grid?: string; gridSeconds?: number };

export interface TrainOutcome {
  steps: number;
  finalLoss: number | null;
  seconds: number;
  interrupted: boolean;
}

/** Messages of the training process. */
export type TrainProcessMessage = TrainEvent | { kind: "done"; outcome: TrainOutcome } | ErrorMessage;

/** A path of the task under the data folder (or the package), never outside it. */
export function taskPath(dataDir: string, path: string, root: "data" | "package" = "data"): string {
  const base = root === "data" ? resolve(dataDir) : packageRoot();
  const full = resolve(base, path);
  const rel = relative(base, full);
  if (!rel || rel.startsWith("..") || isAbsolute(rel))
    throw new Error(`training task path ${path} is outside its folder`);
  return full;
}

/**
 * Runs the task in a process of its own (so the caller's event loop only moves messages, and a
 * caller that dies takes it along: it exits when its parent goes). `signal` stops it within a step,
 * a checkpoint saved: the promise then rejects with the signal's reason.
 */
export function runTrainTask(
  task: TrainTask,
  dataDir: string,
  onEvent: (e: TrainEvent) => void,
  signal?: AbortSignal,
): Promise<TrainOutcome> {
  signal?.throwIfAborted();
  const child = fork(compiledModule(new URL("./train-process.js", import.meta.url)), [], {
    serialization: "advanced",
    stdio: ["ignore", "inherit", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4096);
    process.stderr.write(c);
  });
  return new Promise<TrainOutcome>((done, fail) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      f();
    };
    const onAbort = () => {
      if (child.connected) child.send({ kind: "cancel" });
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    child.on("message", (m: TrainProcessMessage) => {
      if (m.kind === "start" || m.kind === "step" || m.kind === "checkpoint") return onEvent(m);
      if (m.kind === "done")
        settle(() => (m.outcome.interrupted && signal?.aborted ? fail(signal.reason) : done(m.outcome)));
      else settle(() => fail(fromErrorMessage(m)));
    });
    child.on("error", () => {});
    child.on("exit", (code, sig) =>
      settle(() =>
        fail(
          signal?.aborted
            ? (signal.reason ?? new Cancelled())
            : new Error(
                `the training process stopped unexpectedly (${sig ? `signal ${sig}` : `exit code ${code}`})${/heap out of memory/i.test(stderr) ? ": out of memory" : ""}`,
              ),
        ),
      ),
    );
    child.send({ kind: "start", task, dataDir });
  });
}

/**
 * A fixed pool of worker threads running slice tasks (src/recon/slice-task.ts), so that N slices
 * are reconstructed at once and the calling thread's event loop stays free. Each worker loads the
 * modules (and, for score-based methods, the TensorFlow.js backend and the prior) once and keeps
 * them for every task it runs. Cancellation reaches the running sampler between two steps through
 * a flag in shared memory (the worker's own event loop is busy while it computes); results travel
 * back whole, in one message, so a task is never half-applied.
 */
import { Worker } from "node:worker_threads";
import { UserError } from "../errors.js";
import { compiledModule } from "../package-root.js";
import type { SliceOutput, SliceTask } from "./slice-task.js";

export interface SliceRequest {
  task: SliceTask;
  /** [0] becomes 1 when the task is cancelled. */
  cancelled: Int32Array;
}

export type WorkerMessage =
  | { kind: "progress"; done: number; total: number }
  | { kind: "done"; output: SliceOutput }
  | { kind: "error"; message: string; code?: string; field?: string };

interface Slot {
  worker: Worker;
  busy: boolean;
  /** The running task's cancel flag, and its end (settled either way). */
  running?: { cancelled: Int32Array; ended: Promise<unknown> };
}

/**
 * Runs slice tasks somewhere else than the calling thread: worker threads here (SlicePool) or
 * worker processes on other machines through a queue (src/queue/slice-queue.ts).
 */
export interface SliceRunner {
  /** How many tasks it runs at once. */
  readonly size: number;
  run(
    task: SliceTask,
    onIteration?: (done: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<SliceOutput>;
  close(): Promise<void>;
}

export class SlicePool implements SliceRunner {
  private readonly slots: Slot[] = [];
  private readonly waiting: ((slot: Slot) => void)[] = [];
  private closed = false;

  /** `size` workers; each evaluates a prior's network on cores / size threads (src/prior/engine.ts). */
  constructor(private readonly poolSize: number) {
    for (let i = 0; i < poolSize; i++) {
      const slot: Slot = { worker: this.spawn(() => slot), busy: false };
      this.slots.push(slot);
    }
  }

  /** A worker thread; one that dies (out of memory, a crash) is replaced for the next task. */
  private spawn(slot: () => Slot): Worker {
    const worker = new Worker(compiledModule(new URL("./slice-worker.js", import.meta.url)), {
      workerData: { workers: this.poolSize },
    });
    worker.once("exit", () => {
      if (!this.closed) slot().worker = this.spawn(slot);
    });
    return worker;
  }

  get size(): number {
    return this.slots.length;
  }

  private acquire(): Promise<Slot> {
    const free = this.slots.find((s) => !s.busy);
    if (free) {
      free.busy = true;
      return Promise.resolve(free);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else slot.busy = false;
  }

  /** Runs one task on the next free worker; `signal` stops it between two iterations. */
  async run(
    task: SliceTask,
    onIteration?: (done: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<SliceOutput> {
    const slot = await this.acquire();
    if (this.closed) throw new Error("the worker pool was closed");
    const cancelled = new Int32Array(new SharedArrayBuffer(4));
    const cancel = () => Atomics.store(cancelled, 0, 1);
    signal?.addEventListener("abort", cancel);
    try {
      signal?.throwIfAborted();
      const result = new Promise<SliceOutput>((resolve, reject) => {
        const onMessage = (m: WorkerMessage) => {
          if (m.kind === "progress") return onIteration?.(m.done, m.total);
          cleanup();
          if (m.kind === "done") resolve(m.output);
          else if (signal?.aborted) reject(signal.reason);
          else reject(m.code ? new UserError(m.message, m.code, m.field) : new Error(m.message));
        };
        const onError = (err: Error) => {
          cleanup();
          reject(err);
        };
        const onExit = (code: number) => {
          cleanup();
          reject(new Error(`a reconstruction worker stopped (exit code ${code})`));
        };
        const cleanup = () => {
          slot.worker.off("message", onMessage);
          slot.worker.off("error", onError);
          slot.worker.off("exit", onExit);
        };
        slot.worker.on("message", onMessage);
        slot.worker.on("error", onError);
        slot.worker.on("exit", onExit);
        const message: SliceRequest = { task, cancelled };
        slot.worker.postMessage(message);
      });
      slot.running = { cancelled, ended: result.catch(() => {}) };
      return await result;
    } finally {
      slot.running = undefined;
      signal?.removeEventListener("abort", cancel);
      this.release(slot);
    }
  }

  /**
   * Stops the workers. A worker is never terminated inside a native ONNX Runtime call (that aborts
   * the whole process): running tasks are cancelled (they stop after their current step) and each
   * worker is terminated once idle, or after `graceMs` in any case.
   */
  async close(graceMs = 30_000): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.running) {
          Atomics.store(s.running.cancelled, 0, 1);
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([s.running.ended, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
          clearTimeout(timer);
        }
        await s.worker.terminate();
      }),
    );
  }
}

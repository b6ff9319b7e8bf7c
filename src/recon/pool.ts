/**
 * A fixed pool of worker processes running slice tasks (src/recon/slice-task.ts), so that N slices
 * are reconstructed at once and the calling thread's event loop stays free. Processes, not threads:
 * a fatal error in V8 (a heap out of memory, which no `resourceLimits` of a worker thread can
 * contain when one allocation is huge) aborts the whole process it happens in, so it must not be
 * the caller's. A worker that dies fails only the task it was running, with a message that says
 * why (out of memory: its heap limit), and is replaced for the next task. Each worker loads the
 * modules (and, for score-based methods, the TensorFlow.js backend and the prior) once and keeps
 * them for every task it runs. Cancelling a task kills its worker at once, wherever it is stuck;
 * results travel back whole, in one message, so a task is never half-applied.
 */
import { fork, type ChildProcess } from "node:child_process";
import { totalmem } from "node:os";
import { fromErrorMessage, UserError, type ErrorMessage } from "../errors.js";
import { compiledModule } from "../package-root.js";
import type { SliceOutput, SliceTask } from "./slice-task.js";

export interface SliceRequest {
  task: SliceTask;
}

export type WorkerMessage =
  | { kind: "progress"; done: number; total: number }
  | { kind: "done"; output: SliceOutput }
  /** A UserError carries its code (and field); any other error its stack, apart from its message. */
  | ErrorMessage;

/**
 * Default heap limit of one worker (MiB): half the machine's memory shared by the workers, at
 * least 256 and at most 4096. A slice task needs far less; a runaway one stops there.
 */
/** The range of worker processes a user may ask for (`--workers`, `--concurrency`). */
export const WORKERS = { min: 1, max: 256 } as const;

export function defaultWorkerMemoryMb(workers: number): number {
  const share = Math.floor(totalmem() / 2 ** 20 / 2 / Math.max(1, workers));
  return Math.max(256, Math.min(4096, share));
}

export interface SlicePoolOptions {
  /** V8 heap limit of each worker process in MiB (its --max-old-space-size); see defaultWorkerMemoryMb. */
  memoryMb?: number;
  /** The workers' entry module (default: slice-worker.js beside this file). */
  entry?: string;
}

interface Slot {
  child?: ChildProcess;
  busy: boolean;
  /** The end of the current worker's stderr: what a fatal error printed. */
  stderr: string;
}

/**
 * Runs slice tasks somewhere else than the calling thread: worker processes here (SlicePool) or
 * worker processes on other machines through a queue (src/queue/queue-pool.ts).
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
  private readonly memoryMb: number;
  private readonly entry: string;
  private closed = false;

  constructor(size: number, options: SlicePoolOptions = {}) {
    for (let i = 0; i < size; i++) this.slots.push({ busy: false, stderr: "" });
    this.memoryMb = options.memoryMb ?? defaultWorkerMemoryMb(size);
    this.entry = options.entry ?? compiledModule(new URL("./slice-worker.js", import.meta.url));
  }

  get size(): number {
    return this.slots.length;
  }

  /** The slot's worker, started when it has none (at its first task, or after one died). */
  private worker(slot: Slot): ChildProcess {
    if (slot.child) return slot.child;
    // Its argument: the pool's size, so that it takes its share of the cores (src/prior/engine.ts).
    const child = fork(this.entry, [String(this.slots.length)], {
      execArgv: [`--max-old-space-size=${this.memoryMb}`],
      serialization: "advanced",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    slot.child = child;
    slot.stderr = "";
    child.stdout!.on("data", (c: Buffer) => process.stdout.write(c));
    child.stderr!.on("data", (c: Buffer) => {
      slot.stderr = (slot.stderr + c.toString()).slice(-4096);
      process.stderr.write(c);
    });
    child.once("exit", () => {
      if (slot.child === child) slot.child = undefined;
    });
    // An IPC failure shows as the worker's exit; this only keeps it from being an uncaught error.
    child.on("error", () => {});
    return child;
  }

  private kill(slot: Slot): void {
    const child = slot.child;
    slot.child = undefined;
    child?.kill("SIGKILL");
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

  /** Why a worker stopped, for the task it was running. */
  private death(slot: Slot, task: SliceTask, code: number | null, signal: NodeJS.Signals | null): UserError {
    const what = `the reconstruction worker running ${task.method.name}`;
    if (/heap out of memory|Allocation failed/i.test(slot.stderr))
      return new UserError(
        `${what} ran out of memory (heap limit ${this.memoryMb} MiB) and was stopped; ask for less work (fewer steps, samples or iterations) or a smaller image`,
        "out_of_memory",
      );
    return new UserError(
      `${what} stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`,
      "worker_died",
    );
  }

  /** Runs one task on the next free worker; `signal` stops it at once (its worker is killed). */
  async run(
    task: SliceTask,
    onIteration?: (done: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<SliceOutput> {
    const slot = await this.acquire();
    try {
      if (this.closed) throw new Error("the worker pool was closed");
      signal?.throwIfAborted();
      const child = this.worker(slot);
      return await new Promise<SliceOutput>((resolve, reject) => {
        const onMessage = (m: WorkerMessage) => {
          if (m.kind === "progress") return onIteration?.(m.done, m.total);
          cleanup();
          if (m.kind === "done") resolve(m.output);
          else reject(fromErrorMessage(m));
        };
        const onExit = (code: number | null, sig: NodeJS.Signals | null) => {
          cleanup();
          // The pipe may still hold the end of what a fatal error printed.
          setImmediate(() =>
            reject(this.closed ? new Error("the worker pool was closed") : this.death(slot, task, code, sig)),
          );
        };
        const onAbort = () => {
          cleanup();
          this.kill(slot);
          reject(signal!.reason);
        };
        const cleanup = () => {
          child.off("message", onMessage);
          child.off("exit", onExit);
          signal?.removeEventListener("abort", onAbort);
        };
        child.on("message", onMessage);
        child.on("exit", onExit);
        signal?.addEventListener("abort", onAbort);
        const message: SliceRequest = { task };
        child.send(message);
      });
    } finally {
      this.release(slot);
    }
  }

  /** Stops the workers (killing a process is safe wherever it is, inside ONNX Runtime too). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map((s) => {
        const child = s.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((r) => child.once("exit", r));
        this.kill(s);
        return exited;
      }),
    );
  }
}

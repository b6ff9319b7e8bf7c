/**
 * Where jobs wait: the embedded queue runs them in this process; the Redis queue
 * (server/redis-queue.ts) takes its place behind the same interface. A queue aborts a running job
 * with `Cancelled` when the job is cancelled and with `ServerStopping` when it closes, and the
 * runner tells the two apart by type.
 */
import { Cancelled, ServerStopping } from "../src/errors.js";

export interface JobQueue {
  enqueue(id: string): void;
  /** Stops a queued or running job; false when it is neither. */
  cancel(id: string): boolean;
  close(): Promise<void>;
}

/** How a job service makes its queue: the run of one job, and what to do with one cancelled while queued. */
export type MakeJobQueue = (
  run: (id: string, signal: AbortSignal) => Promise<void>,
  cancelledWhileQueued: (id: string) => void,
) => JobQueue;

export class EmbeddedQueue implements JobQueue {
  private readonly waiting: string[] = [];
  private readonly running = new Map<string, AbortController>();
  private closed = false;

  constructor(
    private readonly concurrency: number,
    private readonly run: (id: string, signal: AbortSignal) => Promise<void>,
    private readonly cancelledWhileQueued: (id: string) => void,
  ) {}

  enqueue(id: string): void {
    this.waiting.push(id);
    this.pump();
  }

  cancel(id: string): boolean {
    const i = this.waiting.indexOf(id);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.cancelledWhileQueued(id);
      return true;
    }
    const c = this.running.get(id);
    c?.abort(new Cancelled());
    return !!c;
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.concurrency && this.waiting.length) {
      const id = this.waiting.shift()!;
      const controller = new AbortController();
      this.running.set(id, controller);
      void this.run(id, controller.signal).finally(() => {
        this.running.delete(id);
        this.pump();
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.running.values()) c.abort(new ServerStopping());
  }
}

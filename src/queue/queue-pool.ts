/**
 * Slice tasks on a Redis-backed BullMQ queue, so that worker processes on any number of machines
 * reconstruct the slices of one job together. The submitting side (`QueuePool`) is a
 * `SliceRunner` like the in-process worker-thread pool: the pipeline (src/recon) fans a job out
 * into slice tasks and gathers them the same way in both cases.
 *
 * Results travel through the shared data folder, not through Redis: a worker puts each finished
 * slice into the job's slice store (src/recon/slice-store.ts: written atomically, keyed by the
 * measurements and settings) under the data folder it was given; store folders are named relative
 * to that folder, so every machine may mount it where it likes. A task whose slice is already in
 * the store is not computed again, so a retried task never writes a result twice.
 *
 * Failures: a worker that dies loses its lock; after `lockDuration` BullMQ's stalled-job check
 * hands the task to another worker. A task that fails `attempts` times is failed with its error,
 * and the job reports which slice failed. Cancellation removes the job's waiting tasks and is
 * published on a Redis channel that every worker listens to; a worker running one of the job's
 * tasks stops it between two iterations.
 */
import { randomUUID } from "node:crypto";
import { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import type { SliceRunner } from "../recon/pool.js";
import { folderSliceStore } from "../recon/slice-store.js";
import type { SliceOutput, SliceTask } from "../recon/slice-task.js";
import { redisConnection, redisOutages, watchRedisErrors } from "./redis-connection.js";
import {
  CANCEL_CHANNEL,
  encodeTask,
  keyOf,
  SLICE_QUEUE,
  storeFolder,
  taskId,
  type TaskData,
} from "./task-codec.js";

export interface QueueOptions {
  /** Tries per task before it is failed (default 3). */
  attempts?: number;
  /** Milliseconds a worker's lock lasts without renewal; a dead worker's task moves after this. */
  lockDuration?: number;
}

/**
 * Submits slice tasks to the queue and waits for them: a SliceRunner for `reconstruct`. One per
 * job (or batch study): `store` is that job's slice-store folder relative to the data folder, and
 * the same folder must be the store the pipeline is given.
 */
export class QueuePool implements SliceRunner {
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly publisher: Redis;
  private readonly progress = new Map<string, (done: number, total: number) => void>();
  /** The tasks being waited for, by id: each one's settling function. */
  private readonly waiting = new Map<string, (error?: Error) => void>();
  /** Signals whose abort cancels this pool's tasks. */
  private readonly watched = new WeakSet<AbortSignal>();
  /** BullMQ leaves connections it was given open: they are closed here. */
  private readonly connections: Redis[] = [];

  constructor(
    private readonly redisUrl: string,
    private readonly dataDir: string,
    private readonly store: string,
    /** Tasks in flight at once (the queue's workers bound the real parallelism). */
    readonly size = 64,
    private readonly group: string = randomUUID(),
    private readonly options: QueueOptions = {},
  ) {
    const connect = () => {
      const c = redisConnection(redisUrl);
      this.connections.push(c);
      return c;
    };
    this.queue = new Queue(SLICE_QUEUE, { connection: connect() });
    this.events = new QueueEvents(SLICE_QUEUE, { connection: connect() });
    this.publisher = connect();
    watchRedisErrors(this.queue, redisUrl);
    watchRedisErrors(this.events, redisUrl);
    this.events.on("progress", ({ jobId, data }) => {
      const p = data as { done: number; total: number };
      this.progress.get(jobId)?.(p.done, p.total);
    });
    this.events.on("completed", ({ jobId }) => this.waiting.get(jobId)?.());
    this.events.on("failed", ({ jobId, failedReason }) => this.waiting.get(jobId)?.(new Error(failedReason)));
  }

  async run(
    task: SliceTask,
    onIteration?: (done: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<SliceOutput> {
    signal?.throwIfAborted();
    const key = keyOf(task);
    const storeDir = storeFolder(this.dataDir, this.store);
    const data = encodeTask(task, this.store, this.group);
    const id = taskId(this.group, task);
    await this.events.waitUntilReady();
    if (onIteration) this.progress.set(id, onIteration);
    // One listener per job's signal, not one per task: a job has many tasks in flight.
    if (signal && !this.watched.has(signal)) {
      this.watched.add(signal);
      signal.addEventListener("abort", () => void this.cancel().catch(() => {}), { once: true });
    }
    try {
      await this.queue.add("slice", data, {
        jobId: id,
        attempts: this.options.attempts ?? 3,
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600 },
      });
      try {
        await this.finished(id);
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw new Error(
          `${task.method.name} slice ${task.slice} failed on a queue worker: ${(e as Error).message}`,
        );
      }
      // Completed, or gone from the queue: completed and removed, or removed by a cancel.
      const out = folderSliceStore(storeDir).get(key);
      if (!out) {
        if (signal?.aborted) throw signal.reason;
        throw new Error(`${task.method.name} slice ${task.slice}: the worker's result is not in ${storeDir}`);
      }
      return { ...out, stored: true };
    } finally {
      this.progress.delete(id);
    }
  }

  /**
   * Waits for a queued task: its completed or failed event, or, should an event be missed (the
   * event reader starts listening a few round trips after it is ready; a reconnection), a look
   * at the task every second. A task that is gone from the queue has settled too (completed tasks
   * are removed; so are a cancelled job's waiting ones): the caller looks for its result.
   */
  private finished(id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        clearInterval(timer);
        this.waiting.delete(id);
        if (error) reject(error);
        else resolve();
      };
      this.waiting.set(id, finish);
      const look = async () => {
        const state = await this.queue.getJobState(id);
        if (state === "completed" || state === "unknown") finish();
        else if (state === "failed") finish(new Error((await this.queue.getJob(id))?.failedReason));
      };
      const timer = setInterval(() => void look().catch(() => {}), 1000);
    });
  }

  /** Removes this group's waiting tasks and tells every worker to stop its running ones. */
  async cancel(): Promise<void> {
    for (const job of await this.queue.getJobs(["waiting", "delayed", "prioritized"]))
      if ((job.data as TaskData).group === this.group) await job.remove().catch(() => {});
    await this.publisher.publish(CANCEL_CHANNEL, this.group);
  }

  async close(): Promise<void> {
    for (const finish of this.waiting.values()) finish(new Error("the queue connection was closed"));
    const closing = Promise.all([this.queue.close(), this.events.close()]);
    // Without Redis, BullMQ's close waits for it (the event reader's disconnect never ends).
    if (redisOutages(this.redisUrl).outage) void closing.catch(() => {});
    else await closing;
    for (const c of this.connections) c.disconnect();
  }
}

/**
 * A queue worker (`scorerecon worker`): takes slice tasks from the queue, runs them in worker
 * processes, puts each result into the job's slice store under the shared data folder (atomically,
 * keyed by the measurements and settings). A task whose slice is already in the store is not
 * computed again, so a retried task never writes a result twice. A cancelled group's id arrives on
 * a Redis channel; its running tasks are aborted with `Cancelled` between two iterations.
 * It also takes trainings (train-queue.ts), one at a time, each in a process of its own
 * (runTrainTask), resumed from its checkpoint in the shared data folder when there is one.
 */
import { UnrecoverableError, Worker, type Job } from "bullmq";
import { Cancelled } from "../errors.js";
import { SlicePool } from "../recon/pool.js";
import { folderSliceStore } from "../recon/slice-store.js";
import type { QueueOptions } from "./queue-pool.js";
import type { TrainTaskData } from "./train-queue.js";
import { runTrainTask, TRAIN_QUEUE, type TrainEvent, type TrainOutcome } from "./train-task.js";
import { redisConnection, redisOutages, watchRedisErrors } from "./redis-connection.js";
import {
  CANCEL_CHANNEL,
  decodeTask,
  keyOf,
  SLICE_QUEUE,
  storeFolder,
  type TaskData,
  type TaskResult,
} from "./task-codec.js";

export interface SliceWorkerOptions extends QueueOptions {
  redisUrl: string;
  dataDir: string;
  concurrency: number;
  /** Task lines, and one line per Redis outage. */
  log?: (line: string) => void;
}

/**
 * A queue worker: takes slice tasks, runs them in worker processes (so this process keeps renewing
 * its locks while a slice computes), puts the results into the shared store. Returns a stopper.
 */
export async function startSliceWorker(o: SliceWorkerOptions): Promise<{ close(): Promise<void> }> {
  if (o.log) redisOutages(o.redisUrl).log = o.log;
  const pool = new SlicePool(o.concurrency);
  const running = new Map<string, { group: string; controller: AbortController }>();
  /** Groups cancelled lately: a task of theirs that starts after the message is not run. */
  const cancelled = new Set<string>();
  const processor = async (job: Job<TaskData, TaskResult>): Promise<TaskResult> => {
    const { task: t, store, group } = job.data;
    const task = decodeTask(t);
    const slices = folderSliceStore(storeFolder(o.dataDir, store));
    const key = keyOf(task);
    // Finished by an earlier attempt (a worker that died after writing): never computed twice.
    const done = slices.get(key);
    if (done) return { seconds: done.seconds };
    // A cancelled task fails for good: no retry.
    if (cancelled.has(group)) throw new UnrecoverableError("cancelled");
    const controller = new AbortController();
    running.set(job.id!, { group, controller });
    let last = 0;
    try {
      const out = await pool.run(
        task,
        (d, total) => {
          const now = Date.now();
          if (d === total || now - last > 250) {
            last = now;
            void job.updateProgress({ done: d, total }).catch(() => {});
          }
        },
        controller.signal,
      );
      await slices.put(key, out);
      o.log?.(`${task.method.name} slice ${task.slice} done in ${out.seconds.toFixed(1)} s`);
      return { seconds: out.seconds };
    } catch (e) {
      if (controller.signal.aborted) throw new UnrecoverableError("cancelled");
      throw e;
    } finally {
      running.delete(job.id!);
    }
  };
  const connection = redisConnection(o.redisUrl);
  const trainConnection = redisConnection(o.redisUrl);
  const worker = new Worker<TaskData, TaskResult>(SLICE_QUEUE, processor, {
    connection,
    concurrency: o.concurrency,
    lockDuration: o.lockDuration ?? 30_000,
    stalledInterval: Math.max(1000, Math.floor((o.lockDuration ?? 30_000) / 2)),
    maxStalledCount: 3,
  });
  worker.on("failed", (job, err) => o.log?.(`task ${job?.id} failed: ${err.message}`));
  watchRedisErrors(worker, o.redisUrl);
  const trainings = new Worker<TrainTaskData, TrainOutcome>(
    TRAIN_QUEUE,
    async (job) => {
      const { task, group } = job.data;
      if (cancelled.has(group)) throw new UnrecoverableError("cancelled");
      const controller = new AbortController();
      running.set(job.id!, { group, controller });
      o.log?.(`training ${task.out} started`);
      // Its events go out in batches, a few a second, and at once at a checkpoint.
      let batch: TrainEvent[] = [];
      const flush = () => {
        if (batch.length) void job.updateProgress(batch as unknown as object).catch(() => {});
        batch = [];
      };
      const timer = setInterval(flush, 250);
      try {
        const out = await runTrainTask(
          task,
          o.dataDir,
          (e) => {
            batch.push(e);
            if (e.kind === "checkpoint") flush();
          },
          controller.signal,
        );
        o.log?.(`training ${task.out} done at step ${out.steps}`);
        return out;
      } catch (e) {
        if (controller.signal.aborted) throw new UnrecoverableError("cancelled");
        throw e;
      } finally {
        clearInterval(timer);
        flush();
        running.delete(job.id!);
      }
    },
    {
      connection: trainConnection,
      concurrency: 1,
      lockDuration: o.lockDuration ?? 30_000,
      stalledInterval: Math.max(1000, Math.floor((o.lockDuration ?? 30_000) / 2)),
      maxStalledCount: 3,
    },
  );
  trainings.on("failed", (job, err) => o.log?.(`training ${job?.id} failed: ${err.message}`));
  watchRedisErrors(trainings, o.redisUrl);
  const subscriber = redisConnection(o.redisUrl);
  await subscriber.subscribe(CANCEL_CHANNEL);
  subscriber.on("message", (_channel, group: string) => {
    cancelled.add(group);
    setTimeout(() => cancelled.delete(group), 10 * 60_000).unref();
    for (const [id, r] of running)
      if (r.group === group) {
        r.controller.abort(new Cancelled());
        o.log?.(`task ${id} cancelled`);
      }
  });
  await worker.waitUntilReady();
  await trainings.waitUntilReady();
  return {
    async close() {
      subscriber.disconnect();
      // Without Redis a graceful close would wait for it forever (QUIT, the running tasks' results):
      // the tasks are left to their locks, which expire, and another worker takes them.
      // A training is not waited for: its lock expires and another worker resumes it from its
      // last checkpoint (its process ends with this one).
      await Promise.all([worker.close(redisOutages(o.redisUrl).outage), trainings.close(true)]);
      connection.disconnect();
      trainConnection.disconnect();
      await pool.close();
    },
  };
}

/**
 * Trainings over Redis (BullMQ): the submitting side queues a training as one long task and
 * follows it (its events arrive as the task's progress, a batch every quarter second); a queue
 * worker (worker.ts) runs it with runTrainTask. The checkpoint lies in the shared data folder, so
 * when a worker dies its lock expires, BullMQ hands the task to another worker, and that one
 * resumes from the last checkpoint. Cancelling publishes the training's group on the cancel
 * channel (the running worker stops it within a step) and removes a task still waiting. A
 * submitter that stops (ServerStopping) leaves the task running; following it again later (the
 * same group: the same queue id) waits for that same task, or, once it is gone, queues a new one,
 * which resumes from the checkpoint.
 */
import { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import { Cancelled, ServerStopping } from "../errors.js";
import { redisConnection, redisOutages, watchRedisErrors } from "./redis-connection.js";
import { CANCEL_CHANNEL } from "./task-codec.js";
import { TRAIN_QUEUE, type TrainEvent, type TrainOutcome, type TrainTask } from "./train-task.js";

export interface TrainTaskData {
  task: TrainTask;
  /** Cancellation group: the training's id. */
  group: string;
}

export const trainTaskId = (group: string) => `train-${group}`;

/** Follows trainings on the queue: `run` has runTrainTask's meaning, with a group id. */
export class TrainQueue {
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly publisher: Redis;
  private readonly connections: Redis[] = [];
  private readonly followers = new Map<string, (e: TrainEvent[] | "settled") => void>();

  constructor(private readonly redisUrl: string) {
    const connect = () => {
      const c = redisConnection(redisUrl);
      this.connections.push(c);
      return c;
    };
    this.queue = new Queue(TRAIN_QUEUE, { connection: connect() });
    this.events = new QueueEvents(TRAIN_QUEUE, { connection: connect() });
    this.publisher = connect();
    watchRedisErrors(this.queue, redisUrl);
    watchRedisErrors(this.events, redisUrl);
    this.events.on("progress", ({ jobId, data }) => this.followers.get(jobId)?.(data as TrainEvent[]));
    for (const e of ["completed", "failed", "removed"] as const)
      this.events.on(e, ({ jobId }: { jobId: string }) => this.followers.get(jobId)?.("settled"));
  }

  async run(
    group: string,
    task: TrainTask,
    onEvent: (e: TrainEvent) => void,
    signal: AbortSignal,
  ): Promise<TrainOutcome> {
    signal.throwIfAborted();
    const id = trainTaskId(group);
    await this.events.waitUntilReady();
    // A task left by an earlier submitter is followed, not queued twice.
    await this.queue.add("train", { task, group } satisfies TrainTaskData, {
      jobId: id,
      attempts: 1,
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 3600 },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const end = (error?: unknown) => {
          clearInterval(timer);
          signal.removeEventListener("abort", onAbort);
          this.followers.delete(id);
          if (error) reject(error);
          else resolve();
        };
        // Should an event be missed (a reconnection), a look at the task every second.
        const look = async () => {
          const state = await this.queue.getJobState(id);
          if (state === "completed" || state === "failed" || state === "unknown") end();
        };
        const timer = setInterval(() => void look().catch(() => {}), 1000);
        const onAbort = () => {
          // A stopping submitter leaves the task to run; a cancel stops it.
          if (!(signal.reason instanceof ServerStopping)) void this.cancel(group).catch(() => {});
          end(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        this.followers.set(id, (e) => (e === "settled" ? end() : e.forEach(onEvent)));
      });
      const job = await this.queue.getJob(id);
      if (job?.returnvalue && (await job.isCompleted())) return job.returnvalue as TrainOutcome;
      const reason = job?.failedReason ?? "the training task is gone from the queue";
      await job?.remove().catch(() => {});
      if (reason === "cancelled") throw new Cancelled();
      throw new Error(`the training failed on a queue worker: ${reason}`);
    } finally {
      this.followers.delete(id);
    }
  }

  /** Removes the training's task if it waits, and tells the workers to stop it if it runs. */
  async cancel(group: string): Promise<void> {
    const job = await this.queue.getJob(trainTaskId(group));
    if (job && (await job.isWaiting())) await job.remove().catch(() => {});
    await this.publisher.publish(CANCEL_CHANNEL, group);
  }

  async close(): Promise<void> {
    const closing = Promise.all([this.queue.close(), this.events.close()]);
    if (redisOutages(this.redisUrl).outage) void closing.catch(() => {});
    else await closing;
    for (const c of this.connections) c.disconnect();
  }
}

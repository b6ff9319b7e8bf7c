/**
 * The job queue on Redis (BullMQ), chosen when REDIS_URL is set: jobs wait in Redis and survive a
 * server restart there as well as on disk; each server process takes up to `concurrency` jobs.
 * A job's slices run on queue workers (`scorerecon worker`, src/queue/worker.ts).
 */
import { Queue, Worker } from "bullmq";
import { redisConnection, redisOutages, watchRedisErrors } from "../src/queue/redis-connection.js";
import { Cancelled, ServerStopping } from "../src/errors.js";
import type { JobQueue } from "./job-queue.js";

const JOB_QUEUE = "scorerecon-jobs";

export class RedisJobQueue implements JobQueue {
  private readonly queue: Queue;
  private readonly worker: Worker;
  private readonly running = new Map<string, AbortController>();
  private readonly connections: ReturnType<typeof redisConnection>[];

  constructor(
    private readonly url: string,
    concurrency: number,
    run: (id: string, signal: AbortSignal) => Promise<void>,
    private readonly cancelledWhileQueued: (id: string) => void,
  ) {
    this.connections = [redisConnection(url), redisConnection(url)];
    this.queue = new Queue(JOB_QUEUE, { connection: this.connections[0] });
    this.worker = new Worker(
      JOB_QUEUE,
      async (job) => {
        const controller = new AbortController();
        this.running.set(job.data.id, controller);
        try {
          await run(job.data.id, controller.signal);
        } finally {
          this.running.delete(job.data.id);
        }
      },
      { connection: this.connections[1], concurrency, lockDuration: 60_000 },
    );
    // One log line per outage, not a stack trace per retry (src/queue/redis-connection.ts).
    watchRedisErrors(this.queue, url);
    watchRedisErrors(this.worker, url);
  }

  enqueue(id: string): void {
    // The job id is the queue id: a job re-queued after a restart is not queued twice.
    void this.queue.add("job", { id }, { jobId: id, removeOnComplete: true, removeOnFail: true });
  }

  cancel(id: string): boolean {
    const c = this.running.get(id);
    if (c) {
      c.abort(new Cancelled());
      return true;
    }
    void this.queue.getJob(id).then(async (job) => {
      if (job && (await job.isWaiting())) {
        await job.remove();
        this.cancelledWhileQueued(id);
      }
    });
    return true;
  }

  async close(): Promise<void> {
    for (const c of this.running.values()) c.abort(new ServerStopping());
    // Without Redis a graceful close waits for it forever: the running jobs' locks expire instead.
    await this.worker.close(redisOutages(this.url).outage);
    await this.queue.close();
    for (const c of this.connections) c.disconnect();
  }
}

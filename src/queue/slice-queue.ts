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
import { createHash, randomUUID } from "node:crypto";
import { isAbsolute, join, relative, resolve } from "node:path";
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import { UserError } from "../errors.js";
import { SlicePool, type SliceRunner } from "../recon/pool.js";
import { folderSliceStore, type SliceKey } from "../recon/slice-store.js";
import type { SliceInput, SliceOutput, SliceTask } from "../recon/slice-task.js";

export const SLICE_QUEUE = "scorerecon-slices";
const CANCEL_CHANNEL = "scorerecon:cancel";

interface TaskData {
  /** The task with its typed arrays as base64. */
  task: Omit<SliceTask, "input" | "maskFromFile"> & {
    input: { kind: SliceInput["kind"]; data: string; seed?: number };
    mask?: string;
  };
  /** The slice store, relative to the workers' data folder. */
  store: string;
  /** Cancellation group: a job (or batch) id. */
  group: string;
}

interface TaskResult {
  seconds: number;
}

export interface QueueOptions {
  /** Tries per task before it is failed (default 3). */
  attempts?: number;
  /** Milliseconds a worker's lock lasts without renewal; a dead worker's task moves after this. */
  lockDuration?: number;
}

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
function fromB64<T>(s: string, make: (b: ArrayBuffer) => T): T {
  const buf = Buffer.from(s, "base64");
  return make(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function keyOf(t: SliceTask): SliceKey {
  return { acquisition: t.acquisition, method: t.method, slice: t.slice, input: t.input };
}

function encodeInput(i: SliceInput): TaskData["task"]["input"] {
  return i.kind === "measured"
    ? { kind: i.kind, data: b64(i.y) }
    : { kind: i.kind, data: b64(i.x), seed: i.seed };
}

function decodeInput(i: TaskData["task"]["input"]): SliceInput {
  const data = fromB64(i.data, (b) => new Float32Array(b));
  return i.kind === "measured" ? { kind: i.kind, y: data } : { kind: i.kind, x: data, seed: i.seed ?? 0 };
}

/** The URL with its password, if any, hidden: for messages and logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}

/**
 * Lost and regained connections to one Redis server, for every connection of this process to it
 * (queues, workers, subscribers): one line when the first of them fails, one when all are back,
 * never one per retry. ioredis prints a stack trace for every failed retry of a connection without
 * an `error` listener, and BullMQ one for every error of a queue or worker without one:
 * `redisConnection` and `watchRedisErrors` attach theirs.
 */
export class RedisOutages {
  /** Where the lines go; a command sets its own (the worker's and the server's log). */
  log: (line: string) => void = (line) => process.stderr.write(`scorerecon: ${line}\n`);
  private readonly down = new Set<object>();
  private announced = false;

  /** Whether a loss was reported and Redis is not back yet. */
  get outage(): boolean {
    return this.announced;
  }

  constructor(private readonly url: string) {}

  /** A connection of ours failed (it retries on its own). */
  lost(connection: object, error: Error): void {
    this.down.add(connection);
    this.report(error);
  }

  /** A connection of ours is ready (again): once none is still failing, the outage is over. */
  back(connection: object): void {
    this.down.delete(connection);
    if (this.down.size || !this.announced) return;
    this.announced = false;
    this.log(`Redis ${redactRedisUrl(this.url)}: connected again`);
  }

  /** A connection of ours was closed: it no longer counts, failing or not. */
  ended(connection: object): void {
    if (this.down.delete(connection) && !this.down.size) this.announced = false;
  }

  /** An error from a queue or worker: connection errors while a loss is reported are not repeated. */
  report(error: Error): void {
    if (this.announced) return;
    if (isConnectionError(error)) {
      this.announced = true;
      this.log(`Redis ${redactRedisUrl(this.url)}: connection lost (${error.message}); retrying`);
    } else this.log(`Redis ${redactRedisUrl(this.url)}: ${error.message}`);
  }
}

const outages = new Map<string, RedisOutages>();

/** The outage reporter of one Redis URL, shared by all of this process's connections to it. */
export function redisOutages(url: string): RedisOutages {
  let o = outages.get(url);
  if (!o) outages.set(url, (o = new RedisOutages(url)));
  return o;
}

function isConnectionError(e: Error): boolean {
  const code = (e as { code?: string }).code ?? "";
  return (
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)$/.test(code) ||
    /Connection is closed|connect ETIMEDOUT|Stream isn't writeable/i.test(e.message)
  );
}

/** Sends a queue's, a worker's or a queue-event reader's errors to the URL's outage reporter. */
export function watchRedisErrors(
  emitter: { on(event: "error", f: (e: Error) => void): unknown },
  url: string,
) {
  const outage = redisOutages(url);
  emitter.on("error", (e) => outage.report(e));
}

const REDIS_URL = /^rediss?:\/\//i;

/**
 * A Redis connection for BullMQ (it needs maxRetriesPerRequest null for blocking calls). The
 * commands check the URL first (`checkRedis`); here an unreachable Redis is retried, its outages
 * reported once.
 */
export function redisConnection(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
  const outage = redisOutages(url);
  c.on("error", (e: Error) => outage.lost(c, e));
  c.on("ready", () => outage.back(c));
  c.on("end", () => outage.ended(c));
  return c;
}

/**
 * Connects to Redis once, with no retry, and sends a PING: a URL that is not one, or a Redis that
 * cannot be reached (refused, unknown host, no answer within `timeoutMs`, a password wanted) is a
 * UserError naming `field`, the flag or variable that gave the URL. The connection is closed
 * either way. The commands call it before they start (serve, worker, reconstruct --queue).
 */
export async function checkRedis(url: string, field: string, timeoutMs = 3000): Promise<void> {
  if (!REDIS_URL.test(url) && !url.startsWith("/"))
    throw new UserError(`${field} ${url}: not a Redis URL (redis://host:port)`, "bad_flag", field);
  const where = `${field} ${redactRedisUrl(url)}`;
  let c: Redis;
  try {
    c = new Redis(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      // A server that never answers does not close its end either: do not wait for it.
      disconnectTimeout: 100,
    });
  } catch (e) {
    throw new UserError(`${where}: ${(e as Error).message}`, "bad_flag", field);
  }
  let failure: Error | undefined;
  c.on("error", (e: Error) => (failure ??= e));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      c.connect().then(() => c.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    const reason = (failure ?? (e as Error)).message;
    throw new UserError(`${where}: cannot reach Redis (${reason})`, "redis_unreachable", field);
  } finally {
    clearTimeout(timer);
    // A connection that failed has ended; disconnecting it again would keep the process 2 s.
    if (c.status !== "end") c.disconnect();
  }
}

/** The store folder under the data folder; never outside it. */
function storeFolder(dataDir: string, store: string): string {
  const path = resolve(dataDir, store);
  const rel = relative(resolve(dataDir), path);
  if (!rel || rel.startsWith("..") || isAbsolute(rel))
    throw new Error(`slice store ${store} is outside the data folder`);
  return path;
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
    const data: TaskData = {
      task: {
        ...task,
        input: encodeInput(task.input),
        mask: task.maskFromFile && b64(task.maskFromFile),
        maskFromFile: undefined,
        // Scored here, not on the worker: the truth stays out of Redis.
        truth: undefined,
      } as TaskData["task"],
      store: this.store,
      group: this.group,
    };
    // One id per task and settings: a task is never queued twice while it waits or runs.
    const id = `${this.group}-${task.method.name}-${task.slice}-${createHash("sha1")
      .update(JSON.stringify([task.acquisition, task.method]))
      .digest("hex")
      .slice(0, 12)}`;
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
    const task: SliceTask = {
      ...t,
      input: decodeInput(t.input),
      ...(t.mask ? { maskFromFile: fromB64(t.mask, (b) => new Uint8Array(b)) } : {}),
    };
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
  const worker = new Worker<TaskData, TaskResult>(SLICE_QUEUE, processor, {
    connection,
    concurrency: o.concurrency,
    lockDuration: o.lockDuration ?? 30_000,
    stalledInterval: Math.max(1000, Math.floor((o.lockDuration ?? 30_000) / 2)),
    maxStalledCount: 3,
  });
  worker.on("failed", (job, err) => o.log?.(`task ${job?.id} failed: ${err.message}`));
  watchRedisErrors(worker, o.redisUrl);
  const subscriber = redisConnection(o.redisUrl);
  await subscriber.subscribe(CANCEL_CHANNEL);
  subscriber.on("message", (_channel, group: string) => {
    cancelled.add(group);
    setTimeout(() => cancelled.delete(group), 10 * 60_000).unref();
    for (const [id, r] of running)
      if (r.group === group) {
        r.controller.abort(new Error("cancelled"));
        o.log?.(`task ${id} cancelled`);
      }
  });
  await worker.waitUntilReady();
  return {
    async close() {
      subscriber.disconnect();
      // Without Redis a graceful close would wait for it forever (QUIT, the running tasks' results):
      // the tasks are left to their locks, which expire, and another worker takes them.
      await worker.close(redisOutages(o.redisUrl).outage);
      connection.disconnect();
      await pool.close();
    },
  };
}

/** The store folder of a server job, relative to the data folder (see server/storage.ts). */
export const jobStore = (jobId: string) => join("jobs", jobId, "slices");

/**
 * Reconstruction jobs: their records, the queue they wait in, and the runner that takes them
 * through the one pipeline (src/recon) on a shared pool of worker processes, so the event loop only
 * ever moves messages. Progress goes to subscribers (SSE) and, at every finished slice, to the
 * job's record on disk; finished slices are kept (src/recon/slice-store.ts), so a job re-queued
 * after a restart recomputes nothing it had finished, and a job that ended early (cancelled,
 * failed) still serves the slices it finished. A job that was running when the server died twice
 * is failed at the next start, not re-queued: it may be what killed the server.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { UserError } from "../src/errors.js";
import { keepSlices, sliceOf, type Volume } from "../src/image/volume.js";
import { inHounsfieldUnits, reconstruct, type ProgressEvent } from "../src/recon/reconstruct.js";
import { fromOperatorUnits, toOperatorUnits, type Metrics } from "../src/recon/slice-task.js";
import type { MethodRequest } from "../src/recon/methods.js";
import type { SliceRunner } from "../src/recon/pool.js";
import { withModelDir } from "./models.js";
import type { ResolvedJob } from "./spec.js";
import type { Storage } from "./storage.js";

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";
export const FINAL_STATES: readonly JobState[] = ["done", "failed", "cancelled"];

/** The abort reason of a stopping server: its running jobs stay queued and resume at the next start. */
export const SERVER_STOPPING = "server stopping";

/** Server starts that found a job running (the server died under it) before it is failed. */
export const MAX_INTERRUPTIONS = 2;

export interface SliceMetrics extends Metrics {
  /** The slice's index in the series. */
  slice: number;
  seconds: number;
}

export interface JobRecord {
  id: string;
  created: string;
  study: string;
  plan: ResolvedJob;
  state: JobState;
  error?: { code: string; message: string };
  started?: string;
  finished?: string;
  /** How often a server start found the job running (the server had died under it). */
  restarts: number;
  /** Per method: slices finished of the total, and the slice in progress. */
  progress: Record<
    string,
    { done: number; total: number; current?: { slice: number; done: number; total: number } }
  >;
  /** Per method: metrics of the finished slices, in series order (when ground truth exists). */
  metrics: Record<string, SliceMetrics[]>;
  /** Per method: reconstruction seconds summed over finished slices. */
  seconds: Record<string, number>;
}

export interface JobEvent {
  type: "state" | "progress" | "slice";
  job: string;
  state?: JobState;
  method?: string;
  slice?: number;
  done?: number;
  total?: number;
  metrics?: SliceMetrics;
  error?: JobRecord["error"];
}

/**
 * Where jobs wait. The embedded queue runs them in this process; a distributed queue (Redis) can
 * take its place behind the same interface.
 */
export interface JobQueue {
  enqueue(id: string): void;
  /** Stops a queued or running job; false when it is neither. */
  cancel(id: string): boolean;
  close(): Promise<void>;
}

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
    c?.abort(new Error("cancelled"));
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
    for (const c of this.running.values()) c.abort(new Error(SERVER_STOPPING));
  }
}

export class JobService {
  readonly events = new EventEmitter();
  /** The runs in progress, by job: each settles once the job's run has ended. */
  private readonly runs = new Map<string, Promise<void>>();
  /** Why a job is being cancelled, when not by its own DELETE. */
  private readonly cancelReasons = new Map<string, JobRecord["error"]>();
  /**
   * Per job whose finished slices are read (running, cancelled, failed): whether its CT values are
   * in HU (output units differ from operator units). Dropped when the job is done or its outputs go.
   */
  private readonly huOf = new Map<string, boolean>();
  private readonly saving = new Map<string, Promise<void>>();
  queue: JobQueue;

  /**
   * `runner`: where slices run — a shared pool of worker processes, or one runner per job (a queue
   * of remote workers, closed when the job ends). `queue`: makes the job queue (embedded by default).
   */
  constructor(
    private readonly storage: Storage,
    private readonly runner: SliceRunner | ((jobId: string) => SliceRunner),
    concurrency: number,
    makeQueue?: (
      run: (id: string, signal: AbortSignal) => Promise<void>,
      cancelled: (id: string) => void,
    ) => JobQueue,
  ) {
    this.events.setMaxListeners(0);
    const run = (id: string, signal: AbortSignal) => this.run(id, signal);
    const cancelled = (id: string) => void this.finishCancelled(this.get(id)!);
    this.queue = makeQueue ? makeQueue(run, cancelled) : new EmbeddedQueue(concurrency, run, cancelled);
  }

  /**
   * Re-queues the jobs a stopped server left queued or running; one found running for the
   * MAX_INTERRUPTIONS-th time is failed instead.
   */
  async recover(): Promise<void> {
    for (const job of this.storage.jobs())
      if (job.state === "queued" || job.state === "running") {
        if (job.state === "running") job.restarts++;
        if (job.restarts >= MAX_INTERRUPTIONS) {
          await this.finish(job, "failed", {
            code: "interrupted",
            message: `the server stopped ${job.restarts} times while this job was running; it is not run again, since it may be what stopped the server`,
          });
          continue;
        }
        job.state = "queued";
        await this.save(job);
        this.queue.enqueue(job.id);
      }
  }

  /**
   * A graceful stop: the running jobs are stopped with SERVER_STOPPING, and this resolves once
   * their runs have ended and every record is written (they are saved queued, and the next start
   * resumes them as they were, not as jobs the server died under).
   */
  async close(): Promise<void> {
    await this.queue.close();
    await Promise.allSettled([...this.runs.values()]);
    await Promise.allSettled([...this.saving.values()]);
  }

  get(id: string): JobRecord | undefined {
    return this.storage.job(id);
  }

  /** Every job, oldest first. */
  list(): JobRecord[] {
    return this.storage.jobs();
  }

  async create(study: string, plan: ResolvedJob): Promise<JobRecord> {
    const total = plan.slices[1] - plan.slices[0];
    const record: JobRecord = {
      id: randomUUID(),
      created: new Date().toISOString(),
      study,
      plan,
      state: "queued",
      restarts: 0,
      progress: Object.fromEntries(plan.methods.map((m) => [m.name, { done: 0, total }])),
      metrics: Object.fromEntries(plan.methods.map((m) => [m.name, []])),
      seconds: Object.fromEntries(plan.methods.map((m) => [m.name, 0])),
    };
    await this.save(record);
    this.queue.enqueue(record.id);
    return record;
  }

  cancel(id: string): boolean {
    return this.queue.cancel(id);
  }

  /**
   * Before a study is deleted: cancels its queued and running jobs, waits until they have
   * stopped, and removes every one of its jobs' results and finished slices. The records stay,
   * with error `study_deleted` (unless they have an error of their own): also a job whose run
   * finished (done) while it was being stopped.
   */
  async removeStudyJobs(study: string): Promise<void> {
    const reason = { code: "study_deleted", message: "the job's study was deleted" };
    for (const job of this.storage.jobs().filter((j) => j.study === study)) {
      if (!this.isFinal(job)) {
        this.cancelReasons.set(job.id, reason);
        this.queue.cancel(job.id);
        const running = this.runs.get(job.id);
        if (running) await running;
        // Queued on a queue that cancels later (Redis): stopped here; its run, if it comes, skips it.
        else if (!this.isFinal(job)) await this.finishCancelled(job);
        // A run that ended without seeing the cancellation leaves its reason unused.
        this.cancelReasons.delete(job.id);
      }
      if (!job.error) {
        job.error = reason;
        await this.save(job);
      }
      await this.storage.removeJobOutputs(job.id);
      this.huOf.delete(job.id);
    }
  }

  /** Writes the record; writes of one job happen one after another, the last one wins. */
  private save(job: JobRecord): Promise<void> {
    const next = (this.saving.get(job.id) ?? Promise.resolve()).then(() => this.storage.saveJob(job));
    this.saving.set(
      job.id,
      next.catch(() => {}),
    );
    return next;
  }

  private emit(e: JobEvent): void {
    this.events.emit(e.job, e);
  }

  private async finish(job: JobRecord, state: JobState, error?: JobRecord["error"]): Promise<void> {
    job.state = state;
    job.finished = new Date().toISOString();
    if (error) job.error = error;
    // A done job's slices are read from its result volumes, in output units.
    if (state === "done") this.huOf.delete(job.id);
    for (const p of Object.values(job.progress)) delete p.current;
    await this.save(job);
    this.emit({ type: "state", job: job.id, state, ...(error ? { error } : {}) });
  }

  private finishCancelled(job: JobRecord): Promise<void> {
    const reason = this.cancelReasons.get(job.id);
    this.cancelReasons.delete(job.id);
    return this.finish(job, "cancelled", reason);
  }

  private run(id: string, signal: AbortSignal): Promise<void> {
    const job = this.storage.job(id);
    if (!job || FINAL_STATES.includes(job.state)) return Promise.resolve();
    const running = this.runJob(job, signal).finally(() => this.runs.delete(id));
    this.runs.set(id, running);
    return running;
  }

  private async runJob(job: JobRecord, signal: AbortSignal): Promise<void> {
    const { id } = job;
    job.state = "running";
    job.started = new Date().toISOString();
    await this.save(job);
    this.emit({ type: "state", job: id, state: "running" });
    const { plan } = job;
    const [a, b] = plan.slices;
    try {
      const series = this.storage.volume(job.study, plan.seriesId);
      if (!series) throw new UserError("the job's study was deleted", "not_found", "study");
      // The slices [a, b) with their own geometry: exports lie where these slices lie.
      const volume = keepSlices(
        series,
        Array.from({ length: b - a }, (_, k) => a + k),
      );
      const onProgress = (e: ProgressEvent) => {
        const p = job.progress[e.method];
        if (!e.finished) {
          p.current = { slice: a + e.slice, done: e.done, total: e.total };
          this.emit({
            type: "progress",
            job: id,
            method: e.method,
            slice: a + e.slice,
            done: e.done,
            total: e.total,
          });
          return;
        }
        // Metrics and seconds count each slice once, also when the slice was resumed.
        if (!job.metrics[e.method].some((m) => m.slice === a + e.slice)) {
          p.done++;
          job.seconds[e.method] += e.metrics?.seconds ?? 0;
          if (e.metrics) {
            job.metrics[e.method].push({ slice: a + e.slice, ...e.metrics });
            job.metrics[e.method].sort((x, y) => x.slice - y.slice);
          }
        }
        delete p.current;
        void this.save(job);
        this.emit({
          type: "slice",
          job: id,
          method: e.method,
          slice: a + e.slice,
          done: p.done,
          total: p.total,
          ...(e.metrics ? { metrics: { slice: a + e.slice, ...e.metrics } } : {}),
        });
      };
      const pool = typeof this.runner === "function" ? this.runner(id) : this.runner;
      const result = await reconstruct({
        acquisition: plan.acquisition,
        methods: plan.methods.map((m) => this.runRequest(m)),
        priorField: "model",
        volume,
        seed: plan.spec.seed,
        store: this.storage.sliceStore(id),
        pool,
        signal,
        onProgress,
      }).finally(() => (pool !== this.runner ? pool.close() : undefined));
      for (const r of result.results) {
        await this.storage.saveResult(id, r.method, r.volume);
        if (r.uncertainty) await this.storage.saveResult(id, `${r.method}-std`, r.uncertainty);
        job.seconds[r.method] = r.seconds;
      }
      // The methods that failed while the others ran: the job fails, naming the first of them.
      if (result.failed.length) {
        const { method, error } = result.failed[0];
        await this.finish(job, "failed", this.errorOf(id, error, method));
      } else await this.finish(job, "done");
    } catch (err) {
      if (signal.aborted) {
        // A stopping server leaves the job queued: the next start resumes it.
        if (String((signal.reason as Error)?.message) === SERVER_STOPPING) {
          job.state = "queued";
          await this.save(job);
        } else await this.finishCancelled(job);
      } else await this.finish(job, "failed", this.errorOf(id, err));
    }
  }

  /**
   * A planned method as the job runs it, and as its finished slices are keyed in the job's slice
   * store: the prior's API name (params.model) becomes its folder (server/models.ts).
   */
  private runRequest(m: MethodRequest): MethodRequest {
    return withModelDir(m, this.storage.root);
  }

  /** A job's error as the API tells it: a user error's message, or an id for the server's log. */
  private errorOf(id: string, err: unknown, method?: string): NonNullable<JobRecord["error"]> {
    const prefix = method ? `${method}: ` : "";
    if (err instanceof UserError) return { code: err.code, message: prefix + err.message };
    const ref = randomUUID().slice(0, 8);
    console.error(`job ${id} failed (error id ${ref}):`, err);
    return { code: "internal", message: `${prefix}internal error (error id ${ref})` };
  }

  /**
   * One finished slice of a method's result or its `-std` map (output units), `slice` in the
   * series: from the result volume of a done job, else from the job's finished slices, whatever
   * the job's state (running, cancelled, failed).
   */
  resultSlice(job: JobRecord, method: string, slice: number): Float32Array | undefined {
    const [a, b] = job.plan.slices;
    if (slice < a || slice >= b) return undefined;
    if (job.state === "done") {
      const v = this.storage.result(job.id, method);
      const n = v ? v.rows * v.cols : 0;
      return v?.data.subarray((slice - a) * n, (slice - a + 1) * n);
    }
    const std = method.endsWith("-std");
    const planned = job.plan.methods.find((m) => m.name === (std ? method.slice(0, -4) : method));
    const series = this.storage.volume(job.study, job.plan.seriesId);
    if (!planned || !series) return undefined;
    let request: MethodRequest;
    try {
      request = this.runRequest(planned);
    } catch (e) {
      // Its model was removed: the slices keyed on its folder cannot be found.
      if (e instanceof UserError) return undefined;
      throw e;
    }
    const { acquisition } = job.plan;
    const hu = this.inHu(job, series);
    const k = slice - a;
    const x = toOperatorUnits(sliceOf(series, slice).data, acquisition, hu);
    const input = { kind: "simulated" as const, x, seed: (job.plan.spec.seed ?? 0) + k };
    const out = this.storage.sliceStore(job.id).get({ acquisition, method: request, slice: k, input });
    if (!out) return undefined;
    if (!std) return fromOperatorUnits(out.image, hu);
    return out.std && (hu ? out.std.map((v) => 1000 * v) : out.std);
  }

  /** As the pipeline decides it for the job's slices (src/recon/reconstruct.ts). */
  private inHu(job: JobRecord, series: Volume): boolean {
    let hu = this.huOf.get(job.id);
    if (hu === undefined) {
      const [a, b] = job.plan.slices;
      const n = series.rows * series.cols;
      const own = { ...series, slices: b - a, data: series.data.subarray(a * n, b * n) };
      hu = inHounsfieldUnits(own, job.plan.acquisition);
      this.huOf.set(job.id, hu);
    }
    return hu;
  }

  isFinal(job: JobRecord): boolean {
    return FINAL_STATES.includes(job.state);
  }
}

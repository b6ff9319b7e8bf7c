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
import { ServerStopping, UserError } from "../src/errors.js";
import { keepSlices } from "../src/image/volume.js";
import { reconstruct, type ProgressEvent } from "../src/recon/reconstruct.js";
import type { SliceRunner } from "../src/recon/pool.js";
import { EmbeddedQueue, type JobQueue, type MakeJobQueue } from "./job-queue.js";
import {
  isFinal,
  markFinished,
  MAX_INTERRUPTIONS,
  newJobRecord,
  recordProgress,
  type JobEvent,
  type JobRecord,
  type JobState,
} from "./job-record.js";
import { JobResults, runRequest } from "./job-results.js";
import type { ResolvedJob } from "./spec.js";
import type { Storage } from "./storage.js";
import { WriteChains } from "./write-chains.js";

export class JobService {
  readonly events = new EventEmitter();
  /** The runs in progress, by job: each settles once the job's run has ended. */
  private readonly runs = new Map<string, Promise<void>>();
  /** Why a job is being cancelled, when not by its own DELETE. */
  private readonly cancelReasons = new Map<string, JobRecord["error"]>();
  private readonly results: JobResults;
  private readonly saving = new WriteChains();
  queue: JobQueue;

  /**
   * `runner`: where slices run — a shared pool of worker processes, or one runner per job (a queue
   * of remote workers, closed when the job ends). `queue`: makes the job queue (embedded by default).
   */
  constructor(
    private readonly storage: Storage,
    private readonly runner: SliceRunner | ((jobId: string) => SliceRunner),
    concurrency: number,
    makeQueue?: MakeJobQueue,
  ) {
    this.events.setMaxListeners(0);
    this.results = new JobResults(storage);
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
   * A graceful stop: the running jobs are stopped with ServerStopping, and this resolves once
   * their runs have ended and every record is written (they are saved queued, and the next start
   * resumes them as they were, not as jobs the server died under).
   */
  async close(): Promise<void> {
    await this.queue.close();
    await Promise.allSettled([...this.runs.values()]);
    await this.saving.settled();
  }

  get(id: string): JobRecord | undefined {
    return this.storage.job(id);
  }

  /** Every job, oldest first. */
  list(): JobRecord[] {
    return this.storage.jobs();
  }

  async create(study: string, plan: ResolvedJob): Promise<JobRecord> {
    const record = newJobRecord(study, plan);
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
      this.results.forget(job.id);
    }
  }

  /** Writes the record; writes of one job happen one after another, the last one wins. */
  private save(job: JobRecord): Promise<void> {
    return this.saving.then(job.id, () => this.storage.saveJob(job));
  }

  private emit(e: JobEvent): void {
    this.events.emit(e.job, e);
  }

  private async finish(job: JobRecord, state: JobState, error?: JobRecord["error"]): Promise<void> {
    const event = markFinished(job, state, error);
    // A done job's slices are read from its result volumes, in output units.
    if (state === "done") this.results.forget(job.id);
    await this.save(job);
    this.emit(event);
  }

  private finishCancelled(job: JobRecord): Promise<void> {
    const reason = this.cancelReasons.get(job.id);
    this.cancelReasons.delete(job.id);
    return this.finish(job, "cancelled", reason);
  }

  private run(id: string, signal: AbortSignal): Promise<void> {
    const job = this.storage.job(id);
    if (!job || isFinal(job)) return Promise.resolve();
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
        const { event, save } = recordProgress(job, e);
        if (save) void this.save(job);
        this.emit(event);
      };
      const pool = typeof this.runner === "function" ? this.runner(id) : this.runner;
      const result = await reconstruct({
        acquisition: plan.acquisition,
        methods: plan.methods.map((m) => runRequest(this.storage, m)),
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
        if (signal.reason instanceof ServerStopping) {
          job.state = "queued";
          await this.save(job);
        } else await this.finishCancelled(job);
      } else await this.finish(job, "failed", this.errorOf(id, err));
    }
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
    return this.results.slice(job, method, slice);
  }

  isFinal(job: JobRecord): boolean {
    return isFinal(job);
  }
}

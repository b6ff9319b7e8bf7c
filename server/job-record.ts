/**
 * A job's record (jobs/<job>/job.json) and how it changes: created queued, one step per progress
 * event of the pipeline, finished once. The record is plain data; JobService (server/jobs.ts)
 * saves it after each change and sends the events these functions return to its subscribers.
 */
import { randomUUID } from "node:crypto";
import type { ProgressEvent } from "../src/recon/reconstruct.js";
import type { Metrics } from "../src/recon/slice-task.js";
import type { ResolvedJob } from "./spec.js";

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";
export const FINAL_STATES: readonly JobState[] = ["done", "failed", "cancelled"];

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

export const isFinal = (job: JobRecord): boolean => FINAL_STATES.includes(job.state);

/** A new job's record: queued, nothing done. */
export function newJobRecord(study: string, plan: ResolvedJob): JobRecord {
  const total = plan.slices[1] - plan.slices[0];
  return {
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
}

/**
 * One progress event of the pipeline (its slice counted from the job's first slice) applied to
 * the record: the slice in progress, or a finished slice's count, seconds and metrics (each slice
 * counted once, also when it was resumed). Returns the event for subscribers, and whether the
 * record changed in a way worth saving (a finished slice).
 */
export function recordProgress(job: JobRecord, e: ProgressEvent): { event: JobEvent; save: boolean } {
  const slice = job.plan.slices[0] + e.slice;
  const p = job.progress[e.method];
  if (!e.finished) {
    p.current = { slice, done: e.done, total: e.total };
    return {
      event: { type: "progress", job: job.id, method: e.method, slice, done: e.done, total: e.total },
      save: false,
    };
  }
  if (!job.metrics[e.method].some((m) => m.slice === slice)) {
    p.done++;
    job.seconds[e.method] += e.metrics?.seconds ?? 0;
    if (e.metrics) {
      job.metrics[e.method].push({ slice, ...e.metrics });
      job.metrics[e.method].sort((x, y) => x.slice - y.slice);
    }
  }
  delete p.current;
  const event: JobEvent = {
    type: "slice",
    job: job.id,
    method: e.method,
    slice,
    done: p.done,
    total: p.total,
    ...(e.metrics ? { metrics: { slice, ...e.metrics } } : {}),
  };
  return { event, save: true };
}

/** The record's last change: its final state (and error); no slice is in progress any more. */
export function markFinished(job: JobRecord, state: JobState, error?: JobRecord["error"]): JobEvent {
  job.state = state;
  job.finished = new Date().toISOString();
  if (error) job.error = error;
  for (const p of Object.values(job.progress)) delete p.current;
  return { type: "state", job: job.id, state, ...(error ? { error } : {}) };
}

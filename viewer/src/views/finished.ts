/**
 * Which result slices of a job exist, so that the viewer asks the server only for those: every
 * slice of a done job; of any other job, the slices its record lists as finished (the per-slice
 * metrics of `GET /api/jobs/:id` and of the SSE snapshot), then each SSE `slice` event. An
 * unfinished slice is never requested, so a running job causes no 404s.
 */
import type { Job } from "../api.js";

export class FinishedSlices {
  private readonly slices = new Map<string, Set<number>>();
  private done = false;

  constructor(job: Job) {
    this.reset(job);
  }

  /** Starts again from a job record (a fresh GET or the SSE snapshot). */
  reset(job: Job): void {
    this.done = job.state === "done";
    this.slices.clear();
    for (const [method, rows] of Object.entries(job.metrics?.perSlice ?? {}))
      for (const r of rows) this.add(method, r.slice);
  }

  add(method: string, slice: number): void {
    let set = this.slices.get(method);
    if (!set) this.slices.set(method, (set = new Set()));
    set.add(slice);
  }

  /** Whether a source ("truth", a method, "<method> error", "<method>-std") has this slice. */
  has(source: string, slice: number): boolean {
    if (source === "truth" || this.done) return true;
    // Uncertainty maps are written once the whole job is done.
    if (source.endsWith("-std")) return false;
    const method = source.endsWith(" error") ? source.slice(0, -" error".length) : source;
    return this.slices.get(method)?.has(slice) ?? false;
  }
}

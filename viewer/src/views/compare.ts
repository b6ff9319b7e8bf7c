/**
 * The comparison: a 2x2 (or 1x2) grid of Cornerstone viewports (views/grid.ts) showing the ground
 * truth, any method's result, a difference map (signed, diverging colour map, its own symmetric
 * scale, a colour bar) or an uncertainty map. Window/level and zoom/pan are synchronised; slices
 * scroll together (one current slice for the grid); presets, swipe, flicker, keys, export and a
 * screenshot are the toolbar's (views/toolbar.ts). This file opens a job and follows it live (SSE).
 */
import * as cornerstone from "cornerstone-core";
import { api, followJob, type Job } from "../api.js";
import { sliceRange } from "../format.js";
import { clearError, showError, update } from "../state.js";
import { FinishedSlices } from "./finished.js";
import { blank, cells, initGrid, show, showNewlyFinished, view } from "./grid.js";
import { renderMetrics } from "./metrics.js";
import { renderProgress } from "./progress.js";
import { initToolbar, PRESETS } from "./toolbar.js";

let opening = 0;
let stopFollowing: (() => void) | undefined;

export function initCompare(): void {
  initGrid(scroll);
  initToolbar(scroll);
}

function sources(job: Job): string[] {
  const methods = job.methods.map((m) => m.name);
  const std = job.methods.filter((m) => Number(m.params.samples) > 1).map((m) => `${m.name}-std`);
  return ["truth", ...methods, ...methods.map((m) => `${m} error`), ...std];
}

function defaultSources(job: Job): string[] {
  const methods = job.methods.map((m) => m.name);
  const score = methods.find((m) => ["score", "dds", "song", "langevin"].includes(m)) ?? methods.at(-1)!;
  const classical = methods.find((m) => m === "tv") ?? methods.find((m) => m !== score) ?? score;
  return ["truth", classical, score, `${score} error`];
}

/**
 * Opens a job: the grid with its default sources, progress while it runs, metrics. Opening the
 * job that is already open (when it ends) keeps what each viewport shows and refreshes the rest.
 */
export async function openJob(id: string): Promise<void> {
  const generation = ++opening;
  stopFollowing?.();
  stopFollowing = undefined;
  const switching = view.open?.job.id !== id;
  // Nothing of the previous job may stay on screen under this job's labels, nor be loaded again
  // (by a scroll, say) while this one is read.
  if (switching) {
    view.open = undefined;
    for (const c of cells) blank(c, "loading…");
  }
  try {
    const job = await api.job(id);
    if (generation !== opening) return;
    view.open = { job, finished: new FinishedSlices(job) };
    update({ job });
    location.hash = `job=${job.id}`;
    renderProgress(job);
    if (job.state === "queued" || job.state === "running") follow(job);
    if (switching) {
      setUpGrid(job);
      await Promise.all(cells.map((c, i) => show(c, defaultSources(job)[i])));
      // Fit all once the grid has its final size, so that the synchronised zoom is the same fit.
      for (const c of cells) if (c.shown) cornerstone.resize(c.element, true);
    } else showNewlyFinished();
    if (generation !== opening) return;
    sliceChanged();
    clearError();
  } catch (e) {
    if (generation !== opening) return;
    if (switching) for (const c of cells) blank(c, "");
    showError(e);
  }
}

function setUpGrid(job: Job): void {
  document.getElementById("job-title")!.textContent =
    `${job.description} · ${job.methods.map((m) => m.name).join(", ")}`;
  view.slice = job.slices[0];
  const options = sources(job);
  const exportSelect = document.getElementById("export-method") as HTMLSelectElement;
  exportSelect.replaceChildren(...job.methods.map((m) => new Option(m.name, m.name)));
  const presets = document.getElementById("preset") as HTMLSelectElement;
  presets.replaceChildren(
    new Option("W/L preset", ""),
    new Option("series default", "default"),
    ...(job.modality === "ct" ? Object.keys(PRESETS).map((p) => new Option(p, p)) : []),
  );
  cells.forEach((c) => c.select.replaceChildren(...options.map((o) => new Option(o, o))));
}

function sliceChanged(): void {
  if (!view.open) return;
  document.getElementById("slice-label")!.textContent =
    `slice ${view.slice} of ${sliceRange(view.open.job.slices)}`;
  void renderMetrics(view.slice);
}

function follow(job: Job): void {
  const started = Date.now();
  const startFraction = job.progress;
  const mine = () => (view.open?.job.id === job.id ? view.open : undefined);
  stopFollowing = followJob(
    job.id,
    (type, e) => {
      const o = mine();
      if (!o) return;
      if (type === "snapshot") {
        // The record as the stream starts: slices finished since the job was read count too.
        const fresh = e as unknown as Job;
        Object.assign(o.job, { state: fresh.state, perMethod: fresh.perMethod, error: fresh.error });
        o.finished.reset(fresh);
        showNewlyFinished();
      }
      if (type === "slice") {
        o.job.perMethod[e.method].done = e.done;
        delete o.job.perMethod[e.method].current;
        o.finished.add(e.method, e.slice);
        showNewlyFinished();
        void renderMetrics(view.slice);
      }
      if (type === "progress")
        o.job.perMethod[e.method].current = { slice: e.slice, done: e.done, total: e.total };
      if (type === "state") {
        o.job.state = e.state;
        if (e.error) o.job.error = e.error;
      }
      renderProgress(o.job, started, startFraction);
      if (type === "state" && ["done", "failed", "cancelled"].includes(e.state)) void openJob(job.id);
    },
    showError,
  );
}

/** Moves every viewport to the next (delta 1) or previous (-1) slice of the job. */
export function scroll(delta: number): void {
  if (!view.open) return;
  const [a, b] = view.open.job.slices;
  const k = Math.min(b - 1, Math.max(a, view.slice + delta));
  if (k === view.slice) return;
  view.slice = k;
  sliceChanged();
  for (const c of cells) if (c.source) void show(c, c.source);
}

export function jobIdFromHash(): string | undefined {
  return /job=([0-9a-f-]{36})/.exec(location.hash)?.[1];
}

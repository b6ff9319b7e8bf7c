/**
 * The comparison: a 2x2 (or 1x2) grid of Cornerstone viewports showing the ground truth, any
 * method's result, a difference map (signed, diverging colour map, its own symmetric scale, a
 * colour bar) or an uncertainty map. Window/level and zoom/pan are synchronised with
 * cornerstone-tools synchronizers; slices scroll together (one current slice for the grid); plus
 * presets, swipe, flicker, keyboard shortcuts, live progress (SSE), export and a screenshot.
 *
 * A viewport shows only the open job's images: opening a job blanks every viewport first, each
 * load carries a ticket and a late answer for an older ticket is dropped, and a slice that is not
 * finished is never requested (views/finished.ts) but shown blank with a note.
 */
import * as cornerstone from "cornerstone-core";
import * as csTools from "cornerstone-tools";
import { api, download, followJob, type Job } from "../api.js";
import { sliceRange } from "../format.js";
import { clearError, showError, state, update } from "../state.js";
import { colourBar, DIFFERENCE, drawColourBar, UNCERTAINTY, type ColourScale } from "./colorbar.js";
import { FinishedSlices } from "./finished.js";
import { renderMetrics } from "./metrics.js";
import { renderProgress } from "./progress.js";

interface Cell {
  root: HTMLElement;
  element: HTMLElement;
  select: HTMLSelectElement;
  bar: HTMLElement;
  source: string;
  /** Raised by every show() and blank(): an answer for an older ticket is dropped. */
  ticket: number;
  /** `<job id> <source>` of the image on screen; undefined while the viewport is blank. */
  shown?: string;
}

const cells: Cell[] = [];
/** The job the grid is set up for, and which of its slices exist. */
let open: { job: Job; finished: FinishedSlices } | undefined;
let opening = 0;
let stopFollowing: (() => void) | undefined;
let currentSlice = 0;
let flickered = false;
const PRESETS: Record<string, [number, number]> = {
  brain: [40, 80],
  "soft tissue": [40, 400],
  bone: [400, 1800],
  lung: [-600, 1500],
};

const isDiff = (source: string) => source.endsWith(" error");
const scaleOf = (source: string): ColourScale | undefined =>
  isDiff(source) ? DIFFERENCE : source.endsWith("-std") ? UNCERTAINTY : undefined;

/** A black image for a viewport with nothing of this job to show. */
const BLANK: cornerstone.Image = {
  imageId: "blank",
  minPixelValue: 0,
  maxPixelValue: 0,
  slope: 1,
  intercept: 0,
  windowCenter: 1,
  windowWidth: 1,
  rows: 2,
  columns: 2,
  height: 2,
  width: 2,
  color: false,
  columnPixelSpacing: 1,
  rowPixelSpacing: 1,
  sizeInBytes: 8,
  getPixelData: () => new Int16Array(4),
};

/** The image id of a source ("truth", a method, "<method> error", "<method>-std") at a slice. */
function imageId(job: Job, source: string, slice: number): string {
  if (source === "truth") return `scorerecon:/studies/${job.study}/series/${job.series}/slices/${slice}`;
  if (isDiff(source))
    return `scorerecon:/jobs/${job.id}/results/${source.slice(0, -6)}/error/slices/${slice}`;
  return `scorerecon:/jobs/${job.id}/results/${source}/slices/${slice}`;
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

/** W/L sync that keeps a difference map's own symmetric scale: it follows the width's ratio. */
const wwwcSync: csTools.SyncHandler = (sync, source, target) => {
  if (source === target) return;
  const s = cornerstone.getViewport(source);
  const t = cornerstone.getViewport(target);
  if (!s || !t) return;
  const sd = isDiff(cellOf(source)?.source ?? "");
  const td = isDiff(cellOf(target)?.source ?? "");
  if (sd === td) {
    if (t.voi.windowWidth === s.voi.windowWidth && t.voi.windowCenter === s.voi.windowCenter) return;
    t.voi = { ...s.voi };
  } else if (!sd && td) {
    const base = baseWidth.get(source) ?? s.voi.windowWidth;
    const width = (diffBase.get(target) ?? t.voi.windowWidth) * (s.voi.windowWidth / base);
    if (Math.abs(t.voi.windowWidth - width) < 1e-9 * width) return;
    t.voi = { windowWidth: width, windowCenter: 0 };
  } else return;
  sync.setViewport(target, t);
};
const baseWidth = new Map<HTMLElement, number>();
const diffBase = new Map<HTMLElement, number>();

const cellOf = (el: Element) => cells.find((c) => c.element === el);

let syncs: csTools.Synchronizer[] = [];

export function initCompare(): void {
  csTools.external.cornerstone = cornerstone;
  csTools.init({ showSVGCursors: false, globalToolSyncEnabled: true });
  syncs = [
    new csTools.Synchronizer(cornerstone.EVENTS.IMAGE_RENDERED, wwwcSync),
    new csTools.Synchronizer(cornerstone.EVENTS.IMAGE_RENDERED, csTools.panZoomSynchronizer),
  ];
  const grid = document.getElementById("grid")!;
  // Each viewport is fitted again whenever its own size changes (layout switch, window resize).
  const resized = new ResizeObserver((entries) => {
    for (const e of entries) {
      const el = e.target as HTMLElement;
      if (el.clientWidth && el.clientHeight) cornerstone.resize(el, true);
    }
  });
  for (let i = 0; i < 4; i++) {
    const root = document.createElement("div");
    root.className = "cell";
    root.dataset.index = String(i);
    root.innerHTML = `<div class="viewport"></div><div class="label"><select aria-label="viewport ${i + 1} shows"></select></div><div class="voi"></div>`;
    const bar = colourBar();
    root.append(bar);
    grid.append(root);
    const element = root.querySelector<HTMLElement>(".viewport")!;
    element.addEventListener("contextmenu", (e) => e.preventDefault());
    element.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        if (e.deltaY) scroll(Math.sign(e.deltaY));
      },
      { passive: false },
    );
    cornerstone.enable(element);
    const cell: Cell = { root, element, bar, select: root.querySelector("select")!, source: "", ticket: 0 };
    cell.select.addEventListener("change", () => void show(cell, cell.select.value));
    element.addEventListener(cornerstone.EVENTS.IMAGE_RENDERED, () => describe(cell));
    resized.observe(element);
    cells.push(cell);
  }
  // Tools after the elements are enabled: addTool and setToolActive act on enabled elements.
  csTools.addTool(csTools.WwwcTool);
  csTools.addTool(csTools.PanTool);
  csTools.addTool(csTools.ZoomTool);
  csTools.setToolActive("Wwwc", { mouseButtonMask: 1 });
  csTools.setToolActive("Pan", { mouseButtonMask: 4 });
  csTools.setToolActive("Zoom", { mouseButtonMask: 2 });
  toolbar();
  document.addEventListener("keydown", keys);
}

/** Data attributes for tests and the overlay text: what is shown, at which window; the colour bar. */
function describe(c: Cell): void {
  const vp = cornerstone.getViewport(c.element);
  const img = cornerstone.getImage(c.element);
  if (!c.shown || !vp || !img) return;
  Object.assign(c.root.dataset, {
    imageId: img.imageId,
    rows: String(img.rows),
    cols: String(img.columns),
    ww: String(vp.voi.windowWidth),
    wc: String(vp.voi.windowCenter),
    scale: String(vp.scale),
  });
  c.root.querySelector(".voi")!.textContent =
    `W ${vp.voi.windowWidth.toPrecision(4)} L ${vp.voi.windowCenter.toPrecision(4)}`;
  drawColourBar(c.bar, scaleOf(c.source), vp.voi, open ? unitsOf(open.job) : "");
}

function unitsOf(job: Job): string {
  const units = state.studies.find((s) => s.id === job.study)?.series.find((s) => s.id === job.series)?.units;
  return units === "arbitrary" ? "a.u." : (units ?? "");
}

/**
 * A whole viewport for a new image: fitted, at the image's own window, with this colour map or
 * none. (Cornerstone merges a viewport given to displayImage into the element's last one, so
 * zoom, pan and colour map would otherwise carry over from the previous image.)
 */
function freshViewport(c: Cell, image: cornerstone.Image, colormap?: string): cornerstone.Viewport {
  return {
    ...cornerstone.getDefaultViewportForImage(c.element, image),
    voi: { windowWidth: image.windowWidth, windowCenter: image.windowCenter },
    colormap,
  };
}

/** Nothing of this job to show in the viewport (yet): black, a note, out of the synchronizers. */
function blank(c: Cell, note: string): void {
  c.ticket++;
  for (const s of syncs) s.remove(c.element);
  c.shown = undefined;
  cornerstone.displayImage(c.element, BLANK, freshViewport(c, BLANK));
  c.root.classList.add("missing");
  Object.assign(c.root.dataset, { imageId: "", rows: "", cols: "", ww: "", wc: "", scale: "" });
  c.root.querySelector(".voi")!.textContent = note;
  c.bar.hidden = true;
}

/**
 * Shows a source of the open job at the current slice. The same source of the same job keeps its
 * zoom, pan and window (scrolling); anything else starts fitted at the image's own window.
 */
async function show(c: Cell, source: string, fresh = false): Promise<void> {
  if (!open) return;
  const { job, finished } = open;
  const ticket = ++c.ticket;
  c.source = source;
  c.select.value = source;
  const slice = currentSlice;
  if (!finished.has(source, slice)) return blank(c, `${source}: slice ${slice} is not finished yet`);
  let image: cornerstone.Image;
  try {
    image = await cornerstone.loadImage(imageId(job, source, slice));
  } catch (e) {
    if (ticket === c.ticket) blank(c, e instanceof Error ? e.message : String(e));
    return;
  }
  // A later show() or blank() (another job, source or slice) owns the viewport now.
  if (ticket !== c.ticket) return;
  const key = `${job.id} ${source}`;
  const keep = !fresh && c.shown === key;
  if (keep) {
    cornerstone.displayImage(c.element, image, cornerstone.getViewport(c.element));
  } else {
    for (const s of syncs) s.remove(c.element);
    cornerstone.displayImage(c.element, image, freshViewport(c, image, scaleOf(source)?.colormap));
    cornerstone.resize(c.element, true);
    if (isDiff(source)) diffBase.set(c.element, image.windowWidth);
    else baseWidth.set(c.element, image.windowWidth);
  }
  c.shown = key;
  c.root.classList.remove("missing");
  if (!keep) for (const s of syncs) s.add(c.element);
}

/** Every viewport that waits for a slice that has now finished (finished slices never change). */
function showNewlyFinished(): void {
  for (const c of cells)
    if (open && c.source && !c.shown && open.finished.has(c.source, currentSlice)) void show(c, c.source);
}

/**
 * Opens a job: the grid with its default sources, progress while it runs, metrics. Opening the
 * job that is already open (when it ends) keeps what each viewport shows and refreshes the rest.
 */
export async function openJob(id: string): Promise<void> {
  const generation = ++opening;
  stopFollowing?.();
  stopFollowing = undefined;
  const switching = open?.job.id !== id;
  // Nothing of the previous job may stay on screen under this job's labels, nor be loaded again
  // (by a scroll, say) while this one is read.
  if (switching) {
    open = undefined;
    for (const c of cells) blank(c, "loading…");
  }
  try {
    const job = await api.job(id);
    if (generation !== opening) return;
    open = { job, finished: new FinishedSlices(job) };
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
  currentSlice = job.slices[0];
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
  if (!open) return;
  document.getElementById("slice-label")!.textContent =
    `slice ${currentSlice} of ${sliceRange(open.job.slices)}`;
  void renderMetrics(currentSlice);
}

function follow(job: Job): void {
  const started = Date.now();
  const startFraction = job.progress;
  const mine = () => (open?.job.id === job.id ? open : undefined);
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
        void renderMetrics(currentSlice);
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

function applyVoi(ww: number, wc: number): void {
  const c = cells.find((x) => x.source && !isDiff(x.source)) ?? cells[0];
  const vp = cornerstone.getViewport(c.element);
  if (!vp) return;
  vp.voi = { windowWidth: ww, windowCenter: wc };
  cornerstone.setViewport(c.element, vp);
}

function toolbar(): void {
  const grid = document.getElementById("grid")!;
  document
    .querySelectorAll<HTMLButtonElement>("[data-layout]")
    .forEach((b) => b.addEventListener("click", () => setLayout(b.dataset.layout!)));
  document.getElementById("flicker")!.addEventListener("click", flicker);
  const swipe = document.getElementById("swipe") as HTMLInputElement;
  swipe.addEventListener("input", () => {
    grid.classList.toggle("swiping", Number(swipe.value) < 100);
    grid.style.setProperty("--swipe", `${swipe.value}%`);
    const second = cells[1].root;
    second.style.gridArea = Number(swipe.value) < 100 ? "1 / 1" : "";
    second.style.clipPath = Number(swipe.value) < 100 ? `inset(0 0 0 ${swipe.value}%)` : "";
    second.classList.toggle("swipe-top", Number(swipe.value) < 100);
  });
  document.getElementById("preset")!.addEventListener("change", (e) => {
    const v = (e.target as HTMLSelectElement).value;
    const img = cornerstone.getImage(cells[0].element);
    if (v === "default" && img) applyVoi(img.windowWidth, img.windowCenter);
    else if (PRESETS[v]) applyVoi(PRESETS[v][1], PRESETS[v][0]);
  });
  document.getElementById("reset")!.addEventListener("click", () => {
    for (const c of cells) if (c.source) void show(c, c.source, true);
  });
  document.getElementById("screenshot")!.addEventListener("click", screenshot);
  const exportAs = (format: "dicom" | "nifti") => () => {
    const method = (document.getElementById("export-method") as HTMLSelectElement).value;
    if (!state.job || !method) return;
    const name = format === "dicom" ? `${method}-dicom.zip` : `${method}.nii.gz`;
    download(`/jobs/${state.job.id}/results/${method}/download?format=${format}`, name).catch(showError);
  };
  document.getElementById("export-dicom")!.addEventListener("click", exportAs("dicom"));
  document.getElementById("export-nifti")!.addEventListener("click", exportAs("nifti"));
}

function setLayout(layout: string): void {
  const grid = document.getElementById("grid")!;
  grid.className = `layout-${layout}`;
  document
    .querySelectorAll<HTMLButtonElement>("[data-layout]")
    .forEach((b) => b.classList.toggle("on", b.dataset.layout === layout));
}

function flicker(): void {
  const [a, b] = cells;
  if (!a.source || !b.source) return;
  flickered = !flickered;
  const tmp = a.source;
  void show(a, b.source);
  void show(b, tmp);
  document.getElementById("flicker")!.classList.toggle("on", flickered);
}

/** Moves every viewport to the next (delta 1) or previous (-1) slice of the job. */
export function scroll(delta: number): void {
  if (!open) return;
  const [a, b] = open.job.slices;
  const k = Math.min(b - 1, Math.max(a, currentSlice + delta));
  if (k === currentSlice) return;
  currentSlice = k;
  sliceChanged();
  for (const c of cells) if (c.source) void show(c, c.source);
}

function keys(e: KeyboardEvent): void {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  if (e.key === "ArrowUp" || e.key === "k") scroll(-1);
  else if (e.key === "ArrowDown" || e.key === "j") scroll(1);
  else if (e.key === "f" || e.key === "F") flicker();
  else if (e.key === "r" || e.key === "R") document.getElementById("reset")!.click();
  else if (e.key === "1") setLayout("1x2");
  else if (e.key === "2") setLayout("2x2");
  else return;
  e.preventDefault();
}

/** The visible viewports' canvases, arranged as on screen, saved as one PNG. */
function screenshot(): void {
  const visible = cells.filter((c) => c.root.offsetParent !== null && c.source);
  if (!visible.length) return;
  const rects = visible.map((c) => c.root.getBoundingClientRect());
  const left = Math.min(...rects.map((r) => r.left));
  const top = Math.min(...rects.map((r) => r.top));
  const out = document.createElement("canvas");
  out.width = Math.max(...rects.map((r) => r.right)) - left;
  out.height = Math.max(...rects.map((r) => r.bottom)) - top;
  const ctx = out.getContext("2d")!;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  visible.forEach((c, i) => {
    const canvas = cornerstone.getEnabledElement(c.element).canvas;
    ctx.drawImage(canvas, rects[i].left - left, rects[i].top - top, rects[i].width, rects[i].height);
    ctx.fillStyle = "#fff";
    ctx.font = "14px sans-serif";
    ctx.fillText(c.source, rects[i].left - left + 6, rects[i].top - top + 18);
  });
  const a = document.createElement("a");
  a.href = out.toDataURL("image/png");
  a.download = "scorerecon-comparison.png";
  a.click();
}

export function jobIdFromHash(): string | undefined {
  return /job=([0-9a-f-]{36})/.exec(location.hash)?.[1];
}

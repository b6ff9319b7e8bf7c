/**
 * The comparison: a 2x2 (or 1x2) grid of Cornerstone viewports showing the ground truth, any
 * method's result, a difference map (signed, diverging colour map, its own symmetric scale) or
 * an uncertainty map. Window/level and zoom/pan are synchronised with cornerstone-tools
 * synchronizers, slices scroll together (stack index synchronizer), plus presets, swipe, flicker,
 * keyboard shortcuts, live progress (SSE), export and a screenshot of the grid.
 */
import * as cornerstone from "cornerstone-core";
import * as csTools from "cornerstone-tools";
import { api, download, followJob, type Job } from "../api.js";
import { clearError, showError, state, update } from "../state.js";
import { renderMetrics } from "./metrics.js";

interface Cell {
  root: HTMLElement;
  element: HTMLElement;
  select: HTMLSelectElement;
  source: string;
}

const cells: Cell[] = [];
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

const cellOf = (el: HTMLElement) => cells.find((c) => c.element === el);

let voiSync: csTools.Synchronizer;
let panZoomSync: csTools.Synchronizer;
let stackSync: csTools.Synchronizer;

export function initCompare(): void {
  csTools.external.cornerstone = cornerstone;
  csTools.init({ showSVGCursors: false, globalToolSyncEnabled: true });
  voiSync = new csTools.Synchronizer(cornerstone.EVENTS.IMAGE_RENDERED, wwwcSync);
  panZoomSync = new csTools.Synchronizer(cornerstone.EVENTS.IMAGE_RENDERED, csTools.panZoomSynchronizer);
  stackSync = new csTools.Synchronizer(cornerstone.EVENTS.NEW_IMAGE, csTools.stackImageIndexSynchronizer);
  const grid = document.getElementById("grid")!;
  for (let i = 0; i < 4; i++) {
    const root = document.createElement("div");
    root.className = "cell";
    root.dataset.index = String(i);
    root.innerHTML = `<div class="viewport"></div><div class="label"><select aria-label="viewport ${i + 1} shows"></select></div><div class="voi"></div>`;
    grid.append(root);
    const element = root.querySelector<HTMLElement>(".viewport")!;
    element.addEventListener("contextmenu", (e) => e.preventDefault());
    cornerstone.enable(element);
    const cell: Cell = { root, element, select: root.querySelector("select")!, source: "" };
    cell.select.addEventListener("change", () => void show(cell, cell.select.value));
    element.addEventListener(cornerstone.EVENTS.IMAGE_RENDERED, () => describe(cell));
    element.addEventListener(cornerstone.EVENTS.NEW_IMAGE, () => onNewImage(cell));
    cells.push(cell);
  }
  // Tools after the elements are enabled: addTool and setToolActive act on enabled elements.
  csTools.addTool(csTools.WwwcTool);
  csTools.addTool(csTools.PanTool);
  csTools.addTool(csTools.ZoomTool);
  csTools.addTool(csTools.StackScrollMouseWheelTool);
  csTools.setToolActive("Wwwc", { mouseButtonMask: 1 });
  csTools.setToolActive("Pan", { mouseButtonMask: 4 });
  csTools.setToolActive("Zoom", { mouseButtonMask: 2 });
  csTools.setToolActive("StackScrollMouseWheel", {});
  new ResizeObserver(() => cells.forEach((c) => c.source && cornerstone.resize(c.element, true))).observe(
    grid,
  );
  toolbar();
  document.addEventListener("keydown", keys);
}

/** Data attributes for tests and for the overlay text: what is shown, at which window. */
function describe(c: Cell): void {
  const vp = cornerstone.getViewport(c.element);
  const img = cornerstone.getImage(c.element);
  if (!vp || !img) return;
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
}

function onNewImage(c: Cell): void {
  if (c !== cells[0]) return;
  const stack = csTools.getToolState(c.element, "stack")?.data[0];
  if (!stack || !state.job) return;
  currentSlice = state.job.slices[0] + stack.currentImageIdIndex;
  document.getElementById("slice-label")!.textContent =
    `slice ${currentSlice} (${state.job.slices[0]}-${state.job.slices[1] - 1})`;
  void renderMetrics(currentSlice);
}

async function show(c: Cell, source: string, index?: number): Promise<void> {
  const job = state.job;
  if (!job) return;
  c.source = source;
  c.select.value = source;
  const [a, b] = job.slices;
  const k = index ?? Math.max(0, currentSlice - a);
  const ids = Array.from({ length: b - a }, (_, i) => imageId(job, source, a + i));
  for (const s of [voiSync, panZoomSync, stackSync]) s.remove(c.element);
  try {
    const image = await cornerstone.loadImage(ids[k]);
    csTools.clearToolState(c.element, "stack");
    csTools.addStackStateManager(c.element, ["stack"]);
    csTools.addToolState(c.element, "stack", { currentImageIdIndex: k, imageIds: ids });
    const vp: Partial<cornerstone.Viewport> = {
      voi: { windowWidth: image.windowWidth, windowCenter: image.windowCenter },
    };
    if (isDiff(source)) vp.colormap = "coolwarm";
    else if (source.endsWith("-std")) vp.colormap = "hotIron";
    cornerstone.displayImage(c.element, image, vp);
    cornerstone.resize(c.element, true);
    if (isDiff(source)) diffBase.set(c.element, image.windowWidth);
    else baseWidth.set(c.element, image.windowWidth);
    c.root.classList.remove("missing");
    for (const s of [voiSync, panZoomSync, stackSync]) s.add(c.element);
  } catch (e) {
    c.root.classList.add("missing");
    c.root.dataset.imageId = "";
    c.root.querySelector(".voi")!.textContent = e instanceof Error ? e.message : String(e);
  }
}

/** Opens a job: the grid with its default sources, progress while it runs, metrics. */
export async function openJob(id: string): Promise<void> {
  stopFollowing?.();
  try {
    const job = await api.job(id);
    update({ job });
    location.hash = `job=${job.id}`;
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
    const chosen = defaultSources(job);
    cells.forEach((c) => c.select.replaceChildren(...options.map((o) => new Option(o, o))));
    renderProgress(job);
    if (job.state === "queued" || job.state === "running") follow(job);
    await Promise.all(cells.map((c, i) => show(c, chosen[i], 0)));
    // Fit all once the grid has its final size, so that the synchronised zoom is the same fit.
    for (const c of cells) if (c.source) cornerstone.resize(c.element, true);
    onNewImage(cells[0]);
    await renderMetrics(currentSlice);
    clearError();
  } catch (e) {
    showError(e);
  }
}

function follow(job: Job): void {
  const started = Date.now();
  const startFraction = job.progress;
  stopFollowing = followJob(
    job.id,
    (type, e) => {
      if (type === "slice" && state.job) {
        state.job.perMethod[e.method].done = e.done;
        delete state.job.perMethod[e.method].current;
        // A finished slice can now be shown where it was missing.
        for (const c of cells) if (c.root.classList.contains("missing")) void show(c, c.source);
        void renderMetrics(currentSlice);
      }
      if (type === "progress" && state.job)
        state.job.perMethod[e.method].current = { slice: e.slice, done: e.done, total: e.total };
      if (type === "state" && state.job) {
        state.job.state = e.state;
        if (e.error) showError(new Error(`job ${e.state}: ${e.error.message}`));
        if (["done", "failed", "cancelled"].includes(e.state)) void openJob(job.id);
      }
      if (state.job) renderProgress(state.job, started, startFraction);
    },
    showError,
  );
}

function renderProgress(job: Job, started?: number, startFraction = 0): void {
  const box = document.getElementById("progress")!;
  box.dataset.state = job.state;
  const entries = Object.entries(job.perMethod);
  const total = entries.reduce((s, [, p]) => s + p.total, 0);
  const done = entries.reduce(
    (s, [, p]) => s + p.done + (p.current ? p.current.done / p.current.total : 0),
    0,
  );
  const fraction = total ? done / total : 1;
  let eta = "";
  if (started && fraction > startFraction && job.state === "running") {
    const rate = (fraction - startFraction) / (Date.now() - started);
    eta = ` · ETA ${Math.round((1 - fraction) / rate / 1000)} s`;
  }
  box.innerHTML =
    `<strong id="job-state">${job.state}</strong>${eta} ` +
    entries
      .map(
        ([m, p]) =>
          `${m} <span class="bar"><span style="width:${(100 * (p.done + (p.current ? p.current.done / p.current.total : 0))) / p.total}%"></span></span> ${p.done}/${p.total}`,
      )
      .join(" · ") +
    (job.state === "running" || job.state === "queued" ? ` <button id="cancel-job">Cancel</button>` : "");
  box
    .querySelector("#cancel-job")
    ?.addEventListener("click", () => void api.cancelJob(job.id).catch(showError));
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
    for (const c of cells) if (c.source) void show(c, c.source);
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

/** Scrolls every viewport (through the first one's stack; the synchronizer moves the others). */
export function scroll(delta: number): void {
  const c = cells[0];
  const stack = csTools.getToolState(c.element, "stack")?.data[0];
  if (!stack) return;
  const k = Math.min(stack.imageIds.length - 1, Math.max(0, stack.currentImageIdIndex + delta));
  if (k === stack.currentImageIdIndex) return;
  stack.currentImageIdIndex = k;
  void cornerstone.loadImage(stack.imageIds[k]).then((image) => {
    cornerstone.displayImage(c.element, image, cornerstone.getViewport(c.element));
  });
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

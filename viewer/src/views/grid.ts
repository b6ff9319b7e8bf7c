/**
 * The grid's four Cornerstone viewports: what each shows (a source of the open job at the current
 * slice), blanking, and the synchronisers of window/level and zoom/pan.
 *
 * A viewport shows only the open job's images: opening a job blanks every viewport first, each
 * load carries a ticket and a late answer for an older ticket is dropped, and a slice that is not
 * finished is never requested (views/finished.ts) but shown blank with a note.
 */
import * as cornerstone from "cornerstone-core";
import * as csTools from "cornerstone-tools";
import type { Job } from "../api.js";
import { state } from "../state.js";
import { colourBar, DIFFERENCE, drawColourBar, UNCERTAINTY, type ColourScale } from "./colorbar.js";
import type { FinishedSlices } from "./finished.js";

export interface Cell {
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

export const cells: Cell[] = [];

/** The job the grid is set up for, which of its slices exist, and the slice on screen. */
export const view: { open?: { job: Job; finished: FinishedSlices }; slice: number } = { slice: 0 };

export const isDiff = (source: string) => source.endsWith(" error");
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

/** Makes the four viewports in #grid, with their tools; the wheel scrolls through `scroll`. */
export function initGrid(scroll: (delta: number) => void): void {
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
  drawColourBar(c.bar, scaleOf(c.source), vp.voi, view.open ? unitsOf(view.open.job) : "");
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
export function blank(c: Cell, note: string): void {
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
export async function show(c: Cell, source: string, fresh = false): Promise<void> {
  if (!view.open) return;
  const { job, finished } = view.open;
  const ticket = ++c.ticket;
  c.source = source;
  c.select.value = source;
  const slice = view.slice;
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
export function showNewlyFinished(): void {
  for (const c of cells)
    if (view.open && c.source && !c.shown && view.open.finished.has(c.source, view.slice))
      void show(c, c.source);
}

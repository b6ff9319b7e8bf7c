/**
 * The grid's toolbar and keys: layouts, W/L presets, reset, swipe, flicker, export, screenshot.
 */
import * as cornerstone from "cornerstone-core";
import { download } from "../api.js";
import { showError, state } from "../state.js";
import { cells, isDiff, show } from "./grid.js";

export const PRESETS: Record<string, [number, number]> = {
  brain: [40, 80],
  "soft tissue": [40, 400],
  bone: [400, 1800],
  lung: [-600, 1500],
};
let flickered = false;

function applyVoi(ww: number, wc: number): void {
  const c = cells.find((x) => x.source && !isDiff(x.source)) ?? cells[0];
  const vp = cornerstone.getViewport(c.element);
  if (!vp) return;
  vp.voi = { windowWidth: ww, windowCenter: wc };
  cornerstone.setViewport(c.element, vp);
}

/** Wires the toolbar's controls and the keys (arrows, j/k scroll through `scroll`). */
export function initToolbar(scroll: (delta: number) => void): void {
  document.addEventListener("keydown", (e) => keys(e, scroll));
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

function keys(e: KeyboardEvent, scroll: (delta: number) => void): void {
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

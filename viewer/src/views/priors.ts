/**
 * The Priors panel: train a prior on chosen studies (and slices), from scratch or fine-tuning a
 * prior, through POST /api/models; then follow it (its event stream): step of steps, steps/s,
 * ETA, the loss curve and the latest sample grid; cancel it. Once ready it is in the job form's
 * model list.
 */
import { api, followTraining, imageUrl, type Training, type TrainingEventData } from "../api.js";
import { clearError, showError, state } from "../state.js";
import { knownModels, reloadModels } from "./job-form.js";

let stop: (() => void) | undefined;
let shownStudies = "";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function formHtml(): string {
  const studies = state.studies
    .map(
      (s) =>
        `<label><span>${esc(s.series.map((x) => x.description || x.modality).join(", ") || s.id.slice(0, 8))}</span><input type="checkbox" name="study" value="${s.id}" ${s.id === state.study?.id ? "checked" : ""} /></label>`,
    )
    .join("");
  const mri = state.study?.series[0]?.modality !== "CT";
  return `
    <label>Name <input name="name" required pattern="[A-Za-z0-9][\\w.\\-]{0,63}" placeholder="my-prior" /></label>
    <fieldset><legend>Studies</legend>${studies || "<p>Upload a study first.</p>"}</fieldset>
    <label>Slices from <input type="number" name="sliceStart" min="0" step="1" placeholder="all" /></label>
    <label>to (excl.) <input type="number" name="sliceEnd" min="1" step="1" placeholder="all" /></label>
    <label>Modality <select name="modality"><option value="mri" ${mri ? "selected" : ""}>MRI</option><option value="ct" ${mri ? "" : "selected"}>CT</option></select></label>
    <label>Start from <select name="init"></select></label>
    <label>Steps <input type="number" name="steps" value="200" min="1" max="1000000" step="1" /></label>
    <label>Crop size <input type="number" name="size" min="8" max="512" step="1" placeholder="default" /></label>
    <label>Batch <input type="number" name="batch" value="8" min="1" max="64" step="1" /></label>
    <div class="submit-row"><button type="submit">Start training</button></div>`;
}

/** The priors of the form's modality to start from, and scratch. */
function fillInit(form: HTMLFormElement): void {
  const modality = (form.elements.namedItem("modality") as HTMLSelectElement).value;
  const select = form.elements.namedItem("init") as HTMLSelectElement;
  select.innerHTML = [
    `<option value="">scratch</option>`,
    ...knownModels()
      .filter((m) => m.prior.modality === modality)
      .map((m) => `<option value="${esc(m.name)}">${esc(m.name)}${m.shipped ? " (shipped)" : ""}</option>`),
  ].join("");
}

function specFrom(form: HTMLFormElement) {
  const data = new FormData(form);
  const num = (k: string) => (String(data.get(k) ?? "").trim() ? Number(data.get(k)) : undefined);
  const [a, b] = [num("sliceStart"), num("sliceEnd")];
  const init = String(data.get("init") ?? "");
  return {
    name: String(data.get("name")).trim(),
    modality: String(data.get("modality")),
    studies: data.getAll("study").map(String),
    // Both ends or neither (all slices); one alone is the API's to refuse, naming `slices`.
    ...(a !== undefined || b !== undefined ? { slices: [a, b] } : {}),
    steps: num("steps"),
    ...(num("size") !== undefined ? { size: num("size") } : {}),
    batch: num("batch"),
    ...(init ? { init } : {}),
  };
}

/** The loss curve, [step, loss] points, on its canvas (a log scale: the loss falls by decades). */
function drawLoss(points: [number, number][]): void {
  const canvas = document.getElementById("loss-plot") as HTMLCanvasElement;
  canvas.dataset.points = String(points.length);
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) return;
  const ys = points.map(([, l]) => Math.log(Math.max(l, 1e-9)));
  const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
  const [s0, s1] = [points[0][0], points.at(-1)![0]];
  ctx.strokeStyle = "#6cf";
  ctx.beginPath();
  points.forEach(([s], i) => {
    const x = ((s - s0) / Math.max(1, s1 - s0)) * (canvas.width - 4) + 2;
    const y = canvas.height - 2 - ((ys[i] - lo) / Math.max(hi - lo, 1e-9)) * (canvas.height - 4);
    if (i) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

const seconds = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;

function showStatus(t: Training): void {
  const rate = t.stepsPerSecond ? ` · ${t.stepsPerSecond.toFixed(2)} steps/s` : "";
  const eta = t.etaSeconds !== null && t.state === "training" ? ` · ETA ${seconds(t.etaSeconds)}` : "";
  const status = document.getElementById("training-status")!;
  status.innerHTML = `<b>${esc(t.name)}</b> <span id="training-state">${t.state}</span> · step ${t.step} of ${t.steps}${rate}${eta}${t.error ? ` · ${esc(t.error.message)}` : ""}`;
  (document.getElementById("training-cancel") as HTMLButtonElement).hidden = !["queued", "training"].includes(
    t.state,
  );
}

async function showGrid(name: string): Promise<void> {
  const img = document.getElementById("training-grid") as HTMLImageElement;
  img.src = await imageUrl(`/models/${encodeURIComponent(name)}/grid`);
  img.hidden = false;
}

/** Follows a training: its snapshot, then each event, until it ends. */
export function followPrior(name: string): void {
  stop?.();
  const panel = document.getElementById("training")!;
  panel.hidden = false;
  (document.getElementById("training-grid") as HTMLImageElement).hidden = true;
  let t: Training | undefined;
  stop = followTraining(
    name,
    (type, data) => {
      if (type === "snapshot") t = data as unknown as Training;
      if (!t) return;
      const e = data as TrainingEventData;
      if (type === "progress") {
        Object.assign(t, {
          step: e.step,
          stepsPerSecond: e.stepsPerSecond ?? null,
          etaSeconds: e.etaSeconds ?? null,
        });
        if (e.loss !== undefined && e.step !== undefined) {
          while (t.loss.length && t.loss.at(-1)![0] >= e.step) t.loss.pop();
          t.loss.push([e.step, e.loss]);
        }
      }
      if (type === "state") Object.assign(t, { state: e.state, ...(e.error ? { error: e.error } : {}) });
      showStatus(t);
      drawLoss(t.loss);
      if (type === "grid" || (type === "snapshot" && t.grid)) void showGrid(name).catch(() => {});
      if (type === "state" && e.state === "ready") void reloadModels().then(() => fillInit(form()));
    },
    showError,
  );
  (document.getElementById("training-cancel") as HTMLButtonElement).onclick = () =>
    void api.deleteModel(name).catch(showError);
}

const form = () => document.getElementById("prior-form") as HTMLFormElement;

/** Draws the form again when the studies change (keeping what does not depend on them). */
export function renderPriors(): void {
  const key = state.studies.map((s) => s.id).join() + `|${state.study?.id}`;
  if (key === shownStudies) return;
  shownStudies = key;
  const f = form();
  const name = (f.elements.namedItem("name") as HTMLInputElement | null)?.value ?? "";
  f.innerHTML = formHtml();
  (f.elements.namedItem("name") as HTMLInputElement).value = name;
  fillInit(f);
}

export function initPriors(): void {
  const f = form();
  f.addEventListener("input", (e) => {
    if ((e.target as HTMLSelectElement).name === "modality") fillInit(f);
  });
  f.onsubmit = async (e) => {
    e.preventDefault();
    try {
      const t = await api.createModel(specFrom(f));
      clearError();
      followPrior(t.name);
    } catch (err) {
      showError(err);
    }
  };
}

/**
 * The job form: acquisition (MRI mask with a live picture, or CT views), noise, methods, slices,
 * model. The acquisition fields' defaults, ranges and choices are the API's (GET /api/defaults,
 * from the job schema). The defaults start a useful comparison with one click: the modality's
 * baselines and the score-based method on two middle slices.
 */
import { api, get, type AcquisitionFields, type Field, type Model, type Series } from "../api.js";
import { sliceCount } from "../format.js";
import { clearError, showError, state } from "../state.js";
import { openJob } from "./compare.js";

let models: Model[] = [];
let fields: AcquisitionFields = { mri: {}, ct: {} };

const field = (label: string, html: string) => `<label>${label} ${html}</label>`;
const num = (name: string, value: number, step = "any", min = "0") =>
  `<input type="number" name="${name}" value="${value}" step="${step}" min="${min}" />`;
/** An input for an acquisition field: its default, range and step (1 for integers) from the API. */
const input = (name: string, f: Field | undefined, step?: string) => {
  const attr = (k: string, v: unknown) => (v === undefined ? "" : ` ${k}="${String(v)}"`);
  const s = step ?? (f?.type === "integer" ? "1" : "any");
  return `<input type="number" name="${name}"${attr("value", f?.default)}${attr("step", s)}${attr("min", f?.minimum)}${attr("max", f?.maximum)} />`;
};
const choices = (name: string, f: Field | undefined) =>
  `<select name="${name}">${(f?.enum ?? [])
    .map((v) => `<option ${v === f?.default ? "selected" : ""}>${v}</option>`)
    .join("")}</select>`;

function formHtml(series: Series): string {
  const mri = series.modality !== "CT";
  const mid = Math.max(0, Math.floor(series.slices / 2) - 1);
  const end = Math.min(series.slices, mid + 2);
  const baselines = mri ? ["zero-filled", "tv", "wavelet"] : ["fbp", "sirt", "tv"];
  const checked = mri ? ["zero-filled", "tv"] : ["fbp", "tv"];
  const modality = mri ? "mri" : "ct";
  return `
    ${field("Modality", `<select name="modality"><option value="mri" ${mri ? "selected" : ""}>MRI</option><option value="ct" ${mri ? "" : "selected"} ${series.rows === series.cols ? "" : "disabled"}>CT</option></select>`)}
    <fieldset data-for="mri" ${mri ? "" : "hidden"}>
      ${field("Acceleration", input("acceleration", fields.mri.acceleration))}
      ${field("Centre fraction", input("centerFraction", fields.mri.centerFraction, "0.01"))}
      ${field("Mask", choices("mask", fields.mri.mask))}
      ${field("Mask seed", input("seed", fields.mri.seed))}
      ${field("k-space noise σ", input("noiseSigma", fields.mri.noiseSigma))}
      <canvas id="mask-preview" title="sampling mask (white: sampled)"></canvas>
      <div id="mask-info"></div>
    </fieldset>
    <fieldset data-for="ct" ${mri ? "hidden" : ""}>
      ${field("Views", input("views", fields.ct.views))}
      ${field("Noise", `<select name="noiseKind"><option value="none">none</option><option value="gaussian">Gaussian σ</option><option value="poisson">Poisson I0</option></select>`)}
      ${field("Noise level", num("noiseLevel", 0))}
    </fieldset>
    <fieldset><legend>Methods</legend>
      ${baselines.map((m) => `<label><span>${m}</span><input type="checkbox" name="method" value="${m}" ${checked.includes(m) ? "checked" : ""} /></label>`).join("")}
      <label><span>score-based</span><input type="checkbox" name="method" value="score" checked /></label>
      ${field("Sampler", `<select name="sampler"><option value="score">dds (tuned defaults)</option><option value="dds">dds</option><option value="song">song (PC)</option><option value="langevin">langevin</option></select>`)}
      ${field("Steps", `<input type="number" name="steps" placeholder="default" min="2" step="1" />`)}
      ${field("Samples", `<input type="number" name="samples" placeholder="default" min="1" step="1" />`)}
      ${field(
        "Model",
        `<select name="model">${models
          .filter((m) => m.prior.modality === modality)
          .map((m) => `<option value="${m.name}">${m.name}${m.shipped ? " (shipped)" : ""}</option>`)
          .join("")}</select>`,
      )}
    </fieldset>
    ${field("Slices from", num("sliceStart", mid, "1"))}
    ${field("to (excl.)", num("sliceEnd", end, "1", "1"))}
    <div class="submit-row">
      <button type="submit">Start comparison</button>
      <span id="slice-range">slices ${sliceCount([mid, end])}</span>
    </div>`;
}

async function drawMask(form: HTMLFormElement, series: Series): Promise<void> {
  const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement).value;
  const canvas = form.querySelector<HTMLCanvasElement>("#mask-preview");
  if (!canvas) return;
  const q = new URLSearchParams({
    rows: String(series.rows),
    cols: String(series.cols),
    kind: v("mask"),
    acceleration: v("acceleration"),
    centerFraction: v("centerFraction"),
    seed: v("seed"),
  });
  try {
    const m = await get<{ rows: number; cols: number; acceleration: number; mask: string }>(`/masks?${q}`);
    const bits = Uint8Array.from(atob(m.mask), (c) => c.charCodeAt(0));
    canvas.width = m.cols;
    canvas.height = m.rows;
    const ctx = canvas.getContext("2d")!;
    const img = ctx.createImageData(m.cols, m.rows);
    bits.forEach((b, i) => img.data.set(b ? [255, 255, 255, 255] : [30, 30, 30, 255], 4 * i));
    ctx.putImageData(img, 0, 0);
    form.querySelector("#mask-info")!.textContent = `realised acceleration ${m.acceleration.toFixed(2)}x`;
  } catch (e) {
    form.querySelector("#mask-info")!.textContent = e instanceof Error ? e.message : String(e);
  }
}

function specFrom(form: HTMLFormElement, series: Series) {
  const data = new FormData(form);
  const n = (k: string) => Number(data.get(k));
  const modality = String(data.get("modality"));
  const sampler = String(data.get("sampler"));
  // Empty fields keep the method's tuned defaults (which differ between MRI and CT).
  const scoreParams: Record<string, number> = {};
  for (const k of ["steps", "samples"]) if (String(data.get(k) ?? "").trim()) scoreParams[k] = n(k);
  const methods = data
    .getAll("method")
    .map((m) => (m === "score" ? { name: sampler, params: scoreParams } : { name: String(m), params: {} }));
  const noiseKind = String(data.get("noiseKind"));
  return {
    study: state.study!.id,
    series: series.id,
    slices: [n("sliceStart"), n("sliceEnd")],
    modality,
    ...(modality === "mri"
      ? {
          mri: {
            acceleration: n("acceleration"),
            centerFraction: n("centerFraction"),
            mask: String(data.get("mask")),
            seed: n("seed"),
            noiseSigma: n("noiseSigma"),
          },
        }
      : {
          ct: {
            views: n("views"),
            noise:
              noiseKind === "gaussian"
                ? { kind: "gaussian", sigma: n("noiseLevel") }
                : noiseKind === "poisson"
                  ? { kind: "poisson", I0: n("noiseLevel") }
                  : { kind: "none" },
          },
        }),
    methods,
    ...(data.get("model") ? { model: String(data.get("model")) } : {}),
  };
}

export async function initJobForm(): Promise<void> {
  [models, fields] = await Promise.all([api.models(), api.defaults()]);
}

/** The priors as the form lists them (the Priors panel starts fine-tunes from them). */
export const knownModels = (): readonly Model[] => models;

/** Reads the model list again (a prior trained meanwhile) and redraws the form with it. */
export async function reloadModels(): Promise<void> {
  models = await api.models();
  const form = document.getElementById("job-form") as HTMLFormElement;
  form.dataset.series = "";
  renderJobForm();
}

export function renderJobForm(): void {
  const form = document.getElementById("job-form") as HTMLFormElement;
  const series = state.study?.series.find((s) => s.id === state.seriesId);
  if (!series) {
    form.innerHTML = "<p>Upload or choose a study.</p>";
    form.dataset.series = "";
    return;
  }
  if (form.dataset.series === series.id) return;
  form.dataset.series = series.id;
  form.innerHTML = formHtml(series);
  const redraw = () => void drawMask(form, series);
  form.addEventListener("input", (e) => {
    const t = e.target as HTMLInputElement;
    if (t.name === "modality") {
      form.querySelector<HTMLElement>('[data-for="mri"]')!.hidden = t.value !== "mri";
      form.querySelector<HTMLElement>('[data-for="ct"]')!.hidden = t.value !== "ct";
    }
    if (["acceleration", "centerFraction", "mask", "seed"].includes(t.name)) redraw();
    if (t.name === "sliceStart" || t.name === "sliceEnd") {
      const n = (k: string) => Number((form.elements.namedItem(k) as HTMLInputElement).value);
      form.querySelector("#slice-range")!.textContent =
        `slices ${sliceCount([n("sliceStart"), n("sliceEnd")])}`;
    }
  });
  redraw();
  form.onsubmit = async (e) => {
    e.preventDefault();
    try {
      const job = await api.createJob(specFrom(form, series));
      clearError();
      await openJob(job.id);
    } catch (err) {
      showError(err);
    }
  };
}

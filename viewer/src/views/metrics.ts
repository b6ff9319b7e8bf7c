/** PSNR, SSIM and NMSE per method for the current slice and the volume mean (best highlighted), and PSNR per slice. */
import { api, type Metrics } from "../api.js";
import { showError, state } from "../state.js";

const COLOURS = ["#5aa9ff", "#ffb45a", "#7bd88f", "#ff6b8b", "#c39bff", "#f5e663"];

export async function renderMetrics(slice: number): Promise<void> {
  const job = state.job;
  if (!job) return;
  let m: Metrics;
  try {
    m = await api.metrics(job.id);
  } catch (e) {
    return showError(e);
  }
  // Another job was opened meanwhile: its own call draws the panel.
  if (state.job?.id !== job.id) return;
  const methods = job.methods.map((x) => x.name);
  const current = (name: string) => m.perSlice[name]?.find((r) => r.slice === slice);
  type Key = "psnr" | "ssim" | "nmse";
  const cols: [string, (name: string) => number | undefined, Key][] = [
    ["PSNR dB (slice)", (n) => current(n)?.psnr, "psnr"],
    ["SSIM (slice)", (n) => current(n)?.ssim, "ssim"],
    ["NMSE (slice)", (n) => current(n)?.nmse, "nmse"],
    ["PSNR dB (mean)", (n) => m.mean[n]?.psnr, "psnr"],
    ["SSIM (mean)", (n) => m.mean[n]?.ssim, "ssim"],
    ["NMSE (mean)", (n) => m.mean[n]?.nmse, "nmse"],
  ];
  const best = cols.map(([, get, key]) => {
    const values = methods.map(get).filter((v): v is number => v !== undefined);
    return values.length ? (key === "nmse" ? Math.min(...values) : Math.max(...values)) : undefined;
  });
  const fmt = (v: number | undefined, key: Key) =>
    v === undefined
      ? "–"
      : key === "psnr"
        ? v.toFixed(2)
        : key === "ssim"
          ? v.toFixed(4)
          : v.toExponential(3);
  const table = document.getElementById("metrics-table")!;
  table.innerHTML =
    `<tr><th>method</th>${cols.map(([h]) => `<th>${h}</th>`).join("")}</tr>` +
    methods
      .map(
        (name) =>
          `<tr data-method="${name}"><td>${name}</td>${cols
            .map(([, get, key], i) => {
              const v = get(name);
              return `<td data-key="${key}" data-value="${v ?? ""}" class="${v !== undefined && v === best[i] ? "best" : ""}">${fmt(v, key)}</td>`;
            })
            .join("")}</tr>`,
      )
      .join("");
  plot(m, methods, slice);
}

function plot(m: Metrics, methods: string[], slice: number): void {
  const canvas = document.getElementById("psnr-plot") as HTMLCanvasElement;
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const rows = methods.flatMap((n) => m.perSlice[n] ?? []);
  if (!rows.length) return;
  const [x0, x1] = [Math.min(...rows.map((r) => r.slice)), Math.max(...rows.map((r) => r.slice))];
  const [y0, y1] = [Math.min(...rows.map((r) => r.psnr)) - 1, Math.max(...rows.map((r) => r.psnr)) + 1];
  const px = (s: number) => 40 + ((s - x0) / Math.max(1, x1 - x0)) * (canvas.width - 50);
  const py = (v: number) => canvas.height - 20 - ((v - y0) / (y1 - y0)) * (canvas.height - 30);
  ctx.strokeStyle = "#555";
  ctx.fillStyle = "#aaa";
  ctx.font = "10px sans-serif";
  ctx.fillText(`${y1.toFixed(0)} dB`, 2, py(y1) + 8);
  ctx.fillText(`${y0.toFixed(0)} dB`, 2, py(y0));
  ctx.fillText("PSNR per slice", canvas.width - 80, 10);
  ctx.beginPath();
  ctx.moveTo(px(slice), 5);
  ctx.lineTo(px(slice), canvas.height - 20);
  ctx.stroke();
  methods.forEach((n, i) => {
    const pts = (m.perSlice[n] ?? []).slice().sort((a, b) => a.slice - b.slice);
    ctx.strokeStyle = ctx.fillStyle = COLOURS[i % COLOURS.length];
    ctx.beginPath();
    pts.forEach((p, j) => (j ? ctx.lineTo(px(p.slice), py(p.psnr)) : ctx.moveTo(px(p.slice), py(p.psnr))));
    ctx.stroke();
    for (const p of pts) ctx.fillRect(px(p.slice) - 2, py(p.psnr) - 2, 4, 4);
    ctx.fillText(n, 44 + i * 70, canvas.height - 4);
  });
}

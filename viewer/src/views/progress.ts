/** The job's state line: per-method progress bars, the ETA while it runs, and why it failed. */
import { api, type Job } from "../api.js";
import { showError } from "../state.js";

export function renderProgress(job: Job, started?: number, startFraction = 0): void {
  const box = document.getElementById("progress")!;
  box.dataset.state = job.state;
  const entries = Object.entries(job.perMethod);
  const part = (p: Job["perMethod"][string]) => p.done + (p.current ? p.current.done / p.current.total : 0);
  const total = entries.reduce((s, [, p]) => s + p.total, 0);
  const fraction = total ? entries.reduce((s, [, p]) => s + part(p), 0) / total : 1;
  let eta = "";
  if (started && fraction > startFraction && job.state === "running") {
    const rate = (fraction - startFraction) / (Date.now() - started);
    eta = ` · ETA ${Math.round((1 - fraction) / rate / 1000)} s`;
  }
  const live = job.state === "running" || job.state === "queued";
  box.innerHTML =
    `<strong id="job-state">${job.state}</strong>${eta} ` +
    entries
      .map(
        ([m, p]) =>
          `${m} <span class="bar"><span style="width:${(100 * part(p)) / p.total}%"></span></span> ${p.done}/${p.total}`,
      )
      .join(" · ") +
    (live ? ` <button id="cancel-job">Cancel</button>` : "");
  if (job.error) {
    // The reason stays with the job: it is part of its state line, not a passing message.
    const why = document.createElement("div");
    why.id = "job-error";
    why.textContent = `This job ${job.state === "failed" ? "failed" : "stopped"}: ${job.error.message}`;
    box.append(why);
  }
  box
    .querySelector("#cancel-job")
    ?.addEventListener("click", () => void api.cancelJob(job.id).catch(showError));
}

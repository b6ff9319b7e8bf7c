/** The viewer's entry: Cornerstone set-up, the API token when the server wants one, first look. */
import * as cornerstone from "cornerstone-core";
import * as csTools from "cornerstone-tools";
import cornerstoneMath from "cornerstone-math";
import Hammer from "hammerjs";
import { api, ApiError, token } from "./api.js";
import { sliceCount, sliceRange } from "./format.js";
import { registerLoader } from "./loader.js";
import { clearError, showError, state, subscribe, update } from "./state.js";
import { initCompare, jobIdFromHash, openJob } from "./views/compare.js";
import { initJobForm, renderJobForm } from "./views/job-form.js";
import { initPriors, renderPriors } from "./views/priors.js";
import { initStudies, renderStudies } from "./views/studies.js";

csTools.external.cornerstone = cornerstone;
csTools.external.cornerstoneMath = cornerstoneMath;
csTools.external.Hammer = Hammer;
registerLoader();

async function renderJobs(): Promise<void> {
  const list = document.getElementById("job-list")!;
  const jobs = await api.jobs();
  list.replaceChildren(
    ...jobs
      .slice()
      .reverse()
      .map((j) => {
        const li = document.createElement("li");
        li.className = state.job?.id === j.id ? "active" : "";
        li.dataset.job = j.id;
        li.textContent = `${j.state} · ${j.methods.join(", ")} · slices ${sliceRange(j.slices)}`;
        li.title = j.error ? `${j.state}: ${j.error.message}` : `slices ${sliceCount(j.slices)}`;
        li.addEventListener("click", () => void openJob(j.id));
        return li;
      }),
  );
}

/** Loads studies and jobs and opens a job: the one in the URL, else the newest finished one. */
async function start(): Promise<void> {
  try {
    await initJobForm();
    const studies = await api.studies();
    const study = state.study ?? studies.at(-1);
    update({ studies, study, seriesId: state.seriesId ?? study?.series[0]?.id });
    const jobs = await api.jobs();
    const chosen = jobIdFromHash() ?? (jobs.filter((j) => j.state === "done").at(-1) ?? jobs.at(-1))?.id;
    if (chosen) await openJob(chosen);
    await renderJobs();
    clearError();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) askForToken(!!token.get());
    else showError(e);
  }
}

function askForToken(refused: boolean): void {
  const form = document.getElementById("token-form") as HTMLFormElement;
  form.hidden = false;
  showError(
    refused
      ? "The server refused this API token: check it and enter it again."
      : "This server needs an API token: enter it above (it is kept for this tab only).",
  );
  form.onsubmit = (e) => {
    e.preventDefault();
    token.set((document.getElementById("token") as HTMLInputElement).value.trim());
    form.hidden = true;
    void start();
  };
}

subscribe(() => {
  renderStudies();
  renderJobForm();
  renderPriors();
  void renderJobs().catch(() => {});
});
initStudies();
initCompare();
initPriors();
window.addEventListener("error", (e) => showError(e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));
void start();

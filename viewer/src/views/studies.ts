/** Upload (drag-and-drop or file picker, with progress) and the list of studies and series. */
import { api, uploadStudy, type Study } from "../api.js";
import { clearError, showError, state, update } from "../state.js";

/** Files of a dropped folder, read recursively (DataTransferItem.webkitGetAsEntry). */
async function filesOf(items: DataTransferItemList): Promise<File[]> {
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile)
      out.push(await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej)));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  const entries = Array.from(items)
    .map((i) => i.webkitGetAsEntry())
    .filter((e): e is FileSystemEntry => !!e);
  for (const e of entries) await walk(e);
  return out;
}

export async function upload(files: File[]): Promise<void> {
  if (!files.length) return;
  const bar = document.getElementById("upload-progress") as HTMLProgressElement;
  bar.hidden = false;
  bar.value = 0;
  try {
    const nifti = files.length === 1 && /\.nii(\.gz)?$/i.test(files[0].name);
    const modality = nifti
      ? (prompt("Modality of this NIfTI volume (MR or CT)?", "MR") ?? "MR").toUpperCase()
      : undefined;
    const study = await uploadStudy(files, (f) => (bar.value = f), modality);
    clearError();
    update({ studies: await api.studies(), study, seriesId: study.series[0]?.id });
  } catch (e) {
    showError(e);
  } finally {
    bar.hidden = true;
  }
}

export function initStudies(): void {
  const drop = document.getElementById("drop")!;
  const input = document.getElementById("file-input") as HTMLInputElement;
  input.addEventListener(
    "change",
    () => void upload(Array.from(input.files ?? [])).then(() => (input.value = "")),
  );
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer) void filesOf(e.dataTransfer.items).then(upload).catch(showError);
  });
  drop.addEventListener("keydown", (e) => e.key === "Enter" && input.click());
}

export function renderStudies(): void {
  const list = document.getElementById("study-list")!;
  list.replaceChildren(
    ...state.studies.flatMap((s: Study) =>
      s.series.map((series) => {
        const li = document.createElement("li");
        li.className = state.seriesId === series.id ? "active" : "";
        li.dataset.series = series.id;
        li.textContent = `${series.modality} ${series.rows}x${series.cols}x${series.slices} · ${series.description || s.source} · ${s.created.slice(0, 16).replace("T", " ")}`;
        li.addEventListener("click", () => update({ study: s, seriesId: series.id }));
        return li;
      }),
    ),
  );
}

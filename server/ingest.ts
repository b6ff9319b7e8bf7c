/**
 * Reading an upload folder into volumes, off the event loop: `parseUploadInWorker` runs
 * `parseUpload` in a worker thread (ingest-worker.ts), so a large series is parsed and decoded
 * without stalling the server's other requests, and its voxels come back as transferred buffers.
 * Every volume is checked before it is stored: finite values only, and at least the metrics'
 * window (the SSIM window) in rows and columns, so that no stored study fails later in a job.
 */
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { UserError } from "../src/errors.js";
import type { Volume } from "../src/image/volume.js";
import { DecompressionBudget } from "../src/io/decompression.js";
import { readDicomStudy } from "../src/io/dicom.js";
import { readVolume } from "../src/io/index.js";
import { checkScorable } from "../src/metrics/index.js";
import { compiledModule } from "../src/package-root.js";
import { defaultWindow } from "./storage.js";

export interface ParseOptions {
  /** The upload's decompression limit and what its zips already used of it. */
  limit: number;
  spent: number;
  /** A modality given with the upload (NIfTI carries none of its own). */
  modality?: string;
}

export interface ParsedUpload {
  source: "dicom" | "nifti";
  files: number;
  volumes: Volume[];
  descriptions: string[];
  windows: { center: number; width: number }[];
}

/** Parses the files of an upload folder (zips already extracted); errors name the folder's files. */
export async function parseUpload(dir: string, o: ParseOptions): Promise<ParsedUpload> {
  const budget = new DecompressionBudget(o.limit, o.spent);
  const names = readdirSync(dir).sort();
  if (names.length === 0) throw new UserError("files: the upload holds no files", "bad_upload", "files");
  const nifti = names.filter((n) => n.endsWith(".nii") || n.endsWith(".nii.gz"));
  let volumes: Volume[];
  let descriptions: string[];
  if (nifti.length > 0) {
    if (names.length > 1)
      throw new UserError("files: upload one NIfTI file on its own", "bad_upload", "files");
    const path = join(dir, nifti[0]);
    const v = await readVolume(path, { budget });
    checkScorable(v, path, "files");
    const m = o.modality === "CT" || o.modality === "MR" ? o.modality : v.modality;
    volumes = [{ ...v, modality: m, units: m === "CT" && v.units === "arbitrary" ? "HU" : v.units }];
    descriptions = ["NIfTI volume"];
  } else {
    const { series } = await readDicomStudy(dir, { budget });
    for (const s of series) checkScorable(s.volume, s.files[0], "files");
    volumes = series.map((s) => s.volume);
    descriptions = series.map((s) => s.summary.description);
  }
  return {
    source: nifti.length > 0 ? "nifti" : "dicom",
    files: names.length,
    volumes,
    descriptions,
    windows: volumes.map(defaultWindow),
  };
}

/** What the worker answers: the parsed upload, or the error (a user error keeps its code and field). */
export type WorkerAnswer =
  | { ok: true; parsed: ParsedUpload }
  | { ok: false; user: boolean; message: string; code?: string; field?: string; stack?: string };

/** Uploads parsed at once (each in its own thread, holding its volumes): the others wait their turn. */
const PARSERS = Math.max(1, Math.min(2, availableParallelism() - 1));
let parsing = 0;
const waiting: (() => void)[] = [];

/** `parseUpload` in a worker thread of its own, which ends with the answer. */
export async function parseUploadInWorker(dir: string, o: ParseOptions): Promise<ParsedUpload> {
  // A finished parse hands its slot to the next waiting one.
  if (parsing < PARSERS) parsing++;
  else await new Promise<void>((r) => waiting.push(r));
  try {
    return await runWorker(dir, o);
  } finally {
    const next = waiting.shift();
    if (next) next();
    else parsing--;
  }
}

function runWorker(dir: string, o: ParseOptions): Promise<ParsedUpload> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(compiledModule(new URL("./ingest-worker.js", import.meta.url)), {
      workerData: { dir, options: o },
    });
    let answered = false;
    worker.once("message", (a: WorkerAnswer) => {
      answered = true;
      if (a.ok) resolve(a.parsed);
      else if (a.user) reject(new UserError(a.message, a.code, a.field));
      else reject(Object.assign(new Error(a.message), { stack: a.stack }));
      void worker.terminate();
    });
    worker.once("error", (e: Error & { code?: string }) => {
      answered = true;
      // A volume too large for the worker's memory is the upload's fault, not the server's.
      if (e.code === "ERR_WORKER_OUT_OF_MEMORY")
        reject(new UserError("files: the upload is too large to read (out of memory)", "too_large", "files"));
      else reject(e);
    });
    worker.once("exit", (code) => {
      if (!answered) reject(new Error(`the upload's parser thread exited with code ${code}`));
    });
  });
}

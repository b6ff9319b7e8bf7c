/**
 * `scorerecon reconstruct`: one study or a batch of studies through the pipeline (src/recon), with
 * an overall and a per-slice progress bar, per-study output folders, a metrics.csv/json summary,
 * `--resume` (finished slices are kept in <study out>/.slices and never recomputed) and
 * `--workers N` (slices in N worker processes).
 */
import { join, isAbsolute, relative, resolve } from "node:path";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import type { Volume } from "../image/volume.js";
import { readVolume, writeFileAtomic, writeJsonAtomic } from "../io/index.js";
import { checkScorable } from "../metrics/index.js";
import { checkListedOnce, METHODS, parseMethods } from "../recon/methods.js";
import { WORKERS } from "../recon/pool.js";
import {
  reconstruct,
  slicePoolSize,
  type ProgressEvent,
  type ReconRequest,
  type ReconResult,
} from "../recon/reconstruct.js";
import { folderSliceStore } from "../recon/slice-store.js";
import { engineChoice, engineOption, startEngine } from "./engine-option.js";
import { maskFor } from "./mask-file.js";
import { readMeasurements } from "./measurements.js";
import {
  acquisitionFromFlags,
  addOperatorFlags,
  checkFolder,
  modalityFor,
  parseChoice,
  parseModality,
  parseInteger,
  selectSlices,
  volumeIndex,
  withModel,
  type OperatorFlags,
} from "./options.js";
import { progressBars } from "./progress.js";
import {
  metricsCsv,
  metricsTable,
  OUTPUT_FORMATS,
  studySummary,
  writeResults,
  type StudySummary,
} from "./report.js";
import { expandStudies, studyName, type Study } from "./studies.js";

/** The flags of `reconstruct` as commander gives them (strings, checked where they are used). */
interface ReconstructFlags extends OperatorFlags {
  in?: string[];
  slices?: string;
  series?: string;
  volume?: string;
  format: string;
  measurements?: string;
  modality?: string;
  size?: string;
  method: string;
  out: string;
  model?: string;
  resume?: boolean;
  workers: string;
  queue?: string;
  dataDir?: string;
  anonymise?: boolean;
  json?: boolean;
  engine?: string;
}

export function registerReconstruct(program: Command): void {
  addOperatorFlags(
    program
      .command("reconstruct")
      .description(
        "reconstruct with each method; with --in, simulate from the image(s) and score against them",
      )
      .option(
        "--in <paths...>",
        "ground-truth studies (retrospective): image files, DICOM folders, or folders of studies",
      )
      .option("--slices <ranges>", "only these slices of each study, e.g. 40:60 (zero-based, end exclusive)")
      .option("--series <uid>", "the DICOM series to read when a folder holds several")
      .option("--volume <K>", "the volume of a 4-D NIfTI to read (zero-based)")
      .option(
        "--format <f>",
        "volume output format: nifti|npy|cfl|dicom (a derived series per method; PNGs are always written)",
        "nifti",
      )
      .option(
        "--measurements <meas.npy>",
        "measured k-space or sinogram from `simulate` or elsewhere (prospective)",
      )
      .option("--modality <m>", "mri|ct (default: from the input)")
      .option("--size <N>", "CT image size for --measurements without a sidecar")
      .requiredOption(
        "--method <list>",
        `comma-separated methods, each name[:key=value...]: ${METHODS.map((m) => m.name).join(", ")}`,
      )
      .requiredOption(
        "--out <dir>",
        "output folder: <method>.nii.gz, <method>.png, metrics.json/csv (a batch: one folder per study)",
      )
      .option("--model <dir>", "prior for the score-based methods (default: models/<modality>)")
      .option("--resume", "keep the slices an interrupted run already finished (kept in <out>/.slices)")
      .option("--workers <N>", "reconstruct N slices at once in worker processes", "1")
      .option(
        "--queue <redis-url>",
        "run the slices on `scorerecon worker` processes through this Redis queue",
      )
      .option("--data-dir <dir>", "with --queue: the shared folder the workers see (--out must be inside it)")
      .option(
        "--anonymise",
        "with --format dicom: drop patient name, ID, birth date, sex and accession number",
      )
      .option("--json", "print one JSON object instead of a table")
      .addOption(engineOption()),
  ).action(async (o: ReconstructFlags) => {
    if (!o.in === !o.measurements)
      throw new UserError("give exactly one of --in IMAGE... or --measurements MEAS", "bad_flag", "--in");
    const format = parseChoice("--format", o.format, OUTPUT_FORMATS);
    const workers = parseInteger("--workers", o.workers, WORKERS);
    engineChoice(o.engine);
    checkFolder("--out", o.out);
    // What holds for every study fails once, here, not once per study of a batch.
    checkListedOnce(
      o.method
        .split(",")
        .map((m) => m.split(":")[0].trim())
        .filter(Boolean),
      () => "--method",
      "bad_method",
    );
    if (o.modality) parseMethods(o.method, parseModality(o.modality));
    const queue = o.queue ? await checkQueue(o.queue, o.dataDir, o.out) : undefined;
    // The engine for score-based methods, named (once, by the first study) before the progress bars
    // draw, for the worker processes that study's pool has (which inherit the choice); with --queue,
    // the queue workers use their own.
    const names = String(o.method)
      .split(",")
      .map((m) => m.split(":")[0].trim());
    const engine =
      !queue && METHODS.some((m) => m.needsPrior && names.includes(m.name))
        ? (tasks: { slices: number; methods: number }) =>
            startEngine(o.engine, slicePoolSize(workers, tasks.slices, tasks.methods))
        : undefined;
    const { studies, batch } = o.in
      ? expandStudies(o.in)
      : { studies: [{ name: studyName(o.measurements!), path: o.measurements! }], batch: false };
    const bars = progressBars(["studies", "slice"]);
    const summaries: StudySummary[] = [];
    // In a batch, a study that is bad input (unreadable, wrong size for the prior, ...) is reported
    // and skipped: the others still run and the summary is still written.
    const failed: { study: string; error: string }[] = [];
    try {
      for (const [i, study] of studies.entries()) {
        const out = batch ? join(o.out, study.name) : o.out;
        const label = `${study.name} (${i + 1}/${studies.length})`;
        const onProgress = (e: ProgressEvent, units: number, done: () => number) => {
          bars[0].update(Math.round(1000 * (i + done() / units)), label, 1000 * studies.length);
          bars[1].update(
            Math.round((1000 * e.done) / e.total),
            `${e.method} slice ${e.slice + 1}/${e.slices}${e.resumed ? " (resumed)" : ""}`,
            1000,
          );
        };
        let run: Awaited<ReturnType<typeof runStudy>>;
        try {
          run = await runStudy(study, out, o, workers, onProgress, engine, queue);
        } catch (err) {
          if (!batch || !(err instanceof UserError)) throw err;
          failed.push({ study: study.name, error: err.message });
          continue;
        }
        const { result, reference, resumed } = run;
        await writeResults(out, result, reference, format, !!o.anonymise);
        const summary = studySummary(study.name, result);
        await writeJsonAtomic(join(out, "metrics.json"), summary);
        await writeFileAtomic(join(out, "metrics.csv"), Buffer.from(metricsCsv([summary])));
        summaries.push(summary);
        // A method that failed while the others ran: they are written, and the run fails with it.
        const failure = methodFailure(result);
        if (failure) {
          if (!batch || !(failure instanceof UserError)) throw failure;
          failed.push({ study: study.name, error: failure.message });
          continue;
        }
        if (!o.json)
          bars[0].print(
            `${batch ? `${label}: ` : ""}${summary.settings.description}\n${metricsTable(result)}\n` +
              `${resumed ? `${resumed} slice result(s) resumed from an earlier run\n` : ""}wrote ${join(out, "/")}\n`,
          );
      }
    } finally {
      for (const b of bars) b.stop();
    }
    if (batch) {
      await writeJsonAtomic(join(o.out, "metrics.json"), { studies: summaries, failed });
      await writeFileAtomic(join(o.out, "metrics.csv"), Buffer.from(metricsCsv(summaries)));
      if (!o.json)
        process.stdout.write(`summary: ${join(o.out, "metrics.csv")}, ${join(o.out, "metrics.json")}\n`);
    }
    if (o.json) {
      const brief = (s: StudySummary) => ({ ...s, perSlice: undefined });
      process.stdout.write(
        JSON.stringify(batch ? { studies: summaries.map(brief), failed } : brief(summaries[0])) + "\n",
      );
    }
    if (failed.length)
      throw new UserError(
        `${failed.length} of ${studies.length} studies failed (the others are written): ${failed.map((f) => `${f.study}: ${f.error}`).join("; ")}`,
        "bad_input",
        "--in",
      );
  });
}

/** The first method that failed while the others ran, as the run's error (naming the method). */
function methodFailure(result: ReconResult): unknown {
  const f = result.failed[0];
  if (!f) return undefined;
  const others = result.results.length ? ` (${result.results.map((r) => r.method).join(", ")} written)` : "";
  return f.error instanceof UserError
    ? new UserError(`${f.method}: ${f.error.message}${others}`, f.error.code, f.error.field)
    : f.error;
}

/** Reads one study (or measurements) and runs the pipeline with the slice store of its folder. */
async function runStudy(
  study: Study,
  out: string,
  o: ReconstructFlags,
  workers: number,
  onProgress: (e: ProgressEvent, units: number, done: () => number) => void,
  engine?: (tasks: { slices: number; methods: number }) => Promise<unknown>,
  queue?: QueueFlags,
): Promise<{ result: ReconResult; reference?: Volume; resumed: number }> {
  // Finished slices are always kept (so that a later --resume can use them), reused only with --resume.
  const storeDir = join(out, ".slices");
  const kept = folderSliceStore(storeDir);
  const common = {
    workers,
    store: o.resume ? kept : { get: () => undefined, put: kept.put },
  };
  const run = async (req: Omit<ReconRequest, "store" | "workers" | "pool">) => {
    const pool = queue ? await queuePool(queue, storeDir) : undefined;
    try {
      return await reconstruct({ ...req, ...common, ...(pool ? { pool } : {}) });
    } finally {
      await pool?.close();
    }
  };
  let finished = 0;
  let resumed = 0;
  const progress = (units: number) => (e: ProgressEvent) => {
    if (e.finished) finished++;
    if (e.resumed) resumed++;
    onProgress(e, units, () => finished);
  };
  if (o.measurements) {
    const meas = await readMeasurements(o.measurements, o);
    // Without an acquisition file, how the array was taken is the run's first line.
    if (meas.interpretation) process.stderr.write(`scorerecon: ${meas.interpretation}\n`);
    const methods = withModel(parseMethods(o.method, meas.acquisition), o.model);
    await engine?.({ slices: meas.like.slices, methods: methods.length });
    const result = await run({
      acquisition: meas.acquisition,
      methods,
      measurements: meas,
      maskFromFile: meas.mask,
      onProgress: progress(meas.like.slices * methods.length),
    });
    return { result, resumed };
  }
  const reference = selectSlices(
    await readVolume(study.path, { seriesUid: o.series, volumeIndex: volumeIndex(o.volume) }),
    o.slices,
    study.path,
  );
  checkScorable(reference, study.path, "--in");
  const modality = modalityFor(o.modality, reference);
  const acq = acquisitionFromFlags(modality, reference.rows, reference.cols, o as OperatorFlags);
  const methods = withModel(parseMethods(o.method, acq), o.model);
  await engine?.({ slices: reference.slices, methods: methods.length });
  const result = await run({
    acquisition: acq,
    methods,
    volume: reference,
    maskFromFile: await maskFor(acq, reference),
    seed: Number(o.seed),
    onProgress: progress(reference.slices * methods.length),
  });
  return { result, reference, resumed };
}

/** --queue and its --data-dir, checked. */
interface QueueFlags {
  url: string;
  dataDir: string;
}

/** With --queue: a shared --data-dir holding --out, and a Redis that answers. */
async function checkQueue(url: string, dataDir: string | undefined, out: string): Promise<QueueFlags> {
  if (!dataDir)
    throw new UserError(
      "--queue needs --data-dir, the shared folder the workers see",
      "bad_flag",
      "--data-dir",
    );
  const rel = relative(resolve(dataDir), resolve(out));
  if (rel.startsWith("..") || isAbsolute(rel))
    throw new UserError(
      `--out must be inside --data-dir ${dataDir}, where the workers write`,
      "bad_flag",
      "--out",
    );
  const { checkRedis } = await import("../queue/redis-connection.js");
  await checkRedis(url, "--queue");
  return { url, dataDir };
}

/** With --queue: the slices go to queue workers, which write them into the study's store. */
async function queuePool({ url, dataDir }: QueueFlags, storeDir: string) {
  const { QueuePool } = await import("../queue/queue-pool.js");
  return new QueuePool(url, dataDir, relative(resolve(dataDir), resolve(storeDir)));
}

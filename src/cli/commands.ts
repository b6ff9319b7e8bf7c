/** The `scorerecon` subcommands. Each parses its flags, calls the library and prints. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { realisedAcceleration } from "../../operators/masks.js";
import { PHANTOM_KINDS, generatePhantom, type PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import { makeVolume, sliceOf, type Volume } from "../image/volume.js";
import {
  isDicomPath,
  listDicomSeries,
  readVolume,
  writeFileAtomic,
  writeNpyArray,
  writePng,
  writeVolume,
} from "../io/index.js";
import { describeAcquisition, forwardModel, type Acquisition } from "../recon/acquisition.js";
import { writeDicomSeries } from "../io/dicom-write.js";
import { METHODS, parseMethods, type MethodRequest } from "../recon/methods.js";
import { evalMarkdown, evaluate, STANDARD_SETTINGS } from "../recon/evaluate.js";
import {
  inHounsfieldUnits,
  reconstruct,
  simulateSlice,
  toOperatorUnits,
  type ReconResult,
} from "../recon/reconstruct.js";
import {
  OPERATOR_FLAG_HELP,
  acquisitionFromFlags,
  parseChoice,
  parseModality,
  parseNumber,
  selectSlices,
  type OperatorFlags,
} from "./options.js";
import { progressBar } from "./progress.js";
import { measurementPaths, readMask, readMeasurements } from "./measurements.js";

function addOperatorFlags(cmd: Command): Command {
  for (const [, spec] of Object.entries(OPERATOR_FLAG_HELP)) {
    const [flags, description, dflt] = spec as readonly string[];
    cmd.addOption(new Option(flags, description).default(dflt));
  }
  return cmd;
}

export function registerCommands(program: Command): void {
  program
    .command("phantom")
    .description("write procedural phantom slices")
    .requiredOption("--kind <kind>", `phantom: ${PHANTOM_KINDS.join("|")}`)
    .option("--size <N>", "image size N x N", "256")
    .option("--count <K>", "number of slices (different seeds)", "1")
    .option("--seed <S>", "seed of the first slice", "0")
    .requiredOption("--out <file>", "output .nii, .nii.gz, .npy or .png (one slice)")
    .action(async (o) => {
      const kind = parseChoice("--kind", o.kind, PHANTOM_KINDS) as PhantomKind;
      const size = parseNumber("--size", o.size, { min: 8, integer: true });
      const count = parseNumber("--count", o.count, { min: 1, integer: true });
      const seed = parseNumber("--seed", o.seed, { integer: true });
      const bar = progressBar(count, "phantom");
      const first = generatePhantom(kind, size, seed);
      const volume = makeVolume(count, size, size, undefined, {
        modality: first.units === "HU" ? "CT" : kind === "brain" ? "MR" : "OT",
        units: first.units,
      });
      volume.data.set(first.data, 0);
      for (let k = 1; k < count; k++) {
        volume.data.set(generatePhantom(kind, size, seed + k).data, k * size * size);
        bar.update(k + 1);
      }
      bar.stop();
      await writeVolume(o.out, volume);
      process.stdout.write(`wrote ${count} ${kind} slice(s) ${size}x${size} to ${o.out}\n`);
    });

  addOperatorFlags(
    program
      .command("simulate")
      .description("simulate measurements: MRI k-space (complex64 .npy + mask) or CT sinogram (float32 .npy)")
      .requiredOption("--in <image>", "input image or volume (.nii[.gz], .npy, .cfl, .png)")
      .option("--slices <ranges>", "only these slices, e.g. 40:60 or 10:20,30:40 (zero-based, end exclusive)")
      .option("--series <uid>", "the DICOM series to read when a folder holds several")
      .option("--volume <K>", "the volume of a 4-D NIfTI to read (zero-based)")
      .option("--modality <m>", "mri|ct (default: from the input's modality)")
      .requiredOption(
        "--out <meas.npy>",
        "measurements .npy; MEAS.json (acquisition) and, for MRI, MEAS.mask.npy are written beside it",
      ),
  ).action(async (o) => {
    const volume = selectSlices(
      await readVolume(o.in, { seriesUid: o.series, volumeIndex: volumeIndex(o.volume) }),
      o.slices,
      o.in,
    );
    const modality = modalityFor(o.modality, volume);
    const acq = acquisitionFromFlags(modality, volume.rows, volume.cols, o as OperatorFlags);
    const model = forwardModel(acq, await maskFor(acq, volume));
    const seed = parseNumber("--seed", o.seed, { integer: true });
    const hu = inHounsfieldUnits(volume, acq);
    const [views, dets] = model.op.output.shape;
    const perSlice = model.op.output.complex ? 2 * views * dets : views * dets;
    const data = new Float32Array(volume.slices * perSlice);
    for (let k = 0; k < volume.slices; k++) {
      const x = toOperatorUnits(sliceOf(volume, k).data, acq, hu);
      data.set(simulateSlice(model, x, seed + k), k * perSlice);
    }
    const paths = measurementPaths(o.out);
    const shape = volume.slices > 1 ? [volume.slices, views, dets] : [views, dets];
    await writeNpyArray(paths.data, { shape, data, complex: model.op.output.complex });
    if (model.mask)
      await writeNpyArray(paths.mask, {
        shape: [volume.rows, volume.cols],
        data: model.mask,
        dtype: "uint8",
      });
    await writeJson(paths.sidecar, {
      acquisition: acq,
      units: hu ? "HU" : volume.units,
      spacing: volume.spacing,
      modality: volume.modality,
      seed,
    });
    process.stdout.write(
      `${describeAcquisition(acq)}\nwrote ${paths.data}${model.mask ? `, ${paths.mask}` : ""}, ${paths.sidecar}\n`,
    );
  });

  addOperatorFlags(
    program
      .command("reconstruct")
      .description("reconstruct with each method; with --in, simulate from the image and score against it")
      .option("--in <image>", "ground-truth image or volume (retrospective study)")
      .option("--slices <ranges>", "only these slices of --in, e.g. 40:60 (zero-based, end exclusive)")
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
      .requiredOption("--out <dir>", "output folder: <method>.nii.gz, <method>.png, metrics.json")
      .option("--model <dir>", "prior for the score-based methods (default: models/<modality>)")
      .option(
        "--anonymise",
        "with --format dicom: drop patient name, ID, birth date, sex and accession number",
      )
      .option("--json", "print one JSON object instead of a table"),
  ).action(async (o) => {
    if (!!o.in === !!o.measurements)
      throw new UserError("give exactly one of --in IMAGE or --measurements MEAS", "bad_flag", "--in");
    let result: ReconResult;
    let reference: Volume | undefined;
    if (o.in) {
      reference = selectSlices(
        await readVolume(o.in, { seriesUid: o.series, volumeIndex: volumeIndex(o.volume) }),
        o.slices,
        o.in,
      );
      const modality = modalityFor(o.modality, reference);
      const acq = acquisitionFromFlags(modality, reference.rows, reference.cols, o as OperatorFlags);
      const methods = withModel(parseMethods(o.method, modality), o.model);
      result = await withProgress(reference.slices, methods.length, (onProgress) =>
        maskFor(acq, reference!).then((maskFromFile) =>
          reconstruct({
            acquisition: acq,
            methods,
            volume: reference,
            maskFromFile,
            seed: Number(o.seed),
            onProgress,
          }),
        ),
      );
    } else {
      const meas = await readMeasurements(o.measurements, o);
      const methods = withModel(parseMethods(o.method, meas.acquisition.modality), o.model);
      result = await withProgress(meas.like.slices, methods.length, (onProgress) =>
        reconstruct({
          acquisition: meas.acquisition,
          methods,
          measurements: meas,
          maskFromFile: meas.mask,
          onProgress,
        }),
      );
    }
    await writeResults(
      o.out,
      result,
      reference,
      parseChoice("--format", o.format, OUTPUT_FORMATS),
      !!o.anonymise,
    );
    const summary = {
      modality: result.acquisition.modality,
      settings: {
        acquisition: result.acquisition,
        description: describeAcquisition(result.acquisition),
        dataRange: result.dataRange,
        ...(result.mask ? { realisedAcceleration: realisedAcceleration(result.mask) } : {}),
      },
      results: result.results.map((r) => ({
        method: r.method,
        params: r.params,
        psnr: r.metrics?.psnr ?? null,
        ssim: r.metrics?.ssim ?? null,
        nmse: r.metrics?.nmse ?? null,
        seconds: r.seconds,
      })),
    };
    await writeJson(join(o.out, "metrics.json"), {
      ...summary,
      perSlice: Object.fromEntries(result.results.map((r) => [r.method, r.perSlice ?? []])),
    });
    if (o.json) process.stdout.write(JSON.stringify(summary) + "\n");
    else process.stdout.write(`${summary.settings.description}\n${metricsTable(result)}\nwrote ${o.out}/\n`);
  });

  program
    .command("info")
    .description("describe an image or array file: dimensions, spacing, modality, units, value range")
    .argument("<path>", "a .nii[.gz], .npy, .cfl or .png file")
    .option("--json", "print JSON")
    .action(async (path: string, o) => {
      if (isDicomPath(path)) {
        const { series, skipped } = listDicomSeries(path);
        if (o.json) process.stdout.write(JSON.stringify({ path, series, skipped }) + "\n");
        else {
          for (const s of series)
            process.stdout.write(
              `${s.seriesInstanceUid}: ${s.modality} ${s.description ? `"${s.description}" ` : ""}${s.slices} slice(s) of ${s.rows}x${s.cols}, ${s.transferSyntax}, ${s.files} file(s)\n`,
            );
          for (const k of skipped) process.stdout.write(`skipped ${k.file}: ${k.reason}\n`);
        }
        return;
      }
      const v = await readVolume(path);
      let min = Infinity,
        max = -Infinity;
      for (const x of v.data) {
        if (x < min) min = x;
        if (x > max) max = x;
      }
      const info = {
        path,
        slices: v.slices,
        rows: v.rows,
        cols: v.cols,
        spacing: v.spacing,
        modality: v.modality,
        units: v.units,
        min,
        max,
        affine: v.affine ?? null,
      };
      if (o.json) process.stdout.write(JSON.stringify(info) + "\n");
      else
        process.stdout.write(
          `${path}: ${v.slices} slice(s) of ${v.rows}x${v.cols}, spacing ${v.spacing.join(" x ")} mm (row, col, slice), modality ${v.modality}, units ${v.units}, values ${min} .. ${max}${v.affine ? ", with affine" : ""}\n`,
        );
    });

  program
    .command("convert")
    .description("convert between .nii[.gz], .npy, .cfl and .png (one slice), keeping values and geometry")
    .requiredOption("--in <path>", "input file")
    .requiredOption("--out <file>", "output file; the format follows the extension")
    .option("--slices <ranges>", "only these slices, e.g. 40:60 (zero-based, end exclusive)")
    .option("--series <uid>", "the DICOM series to read when a folder holds several")
    .option("--volume <K>", "the volume of a 4-D NIfTI to read (zero-based)")
    .action(async (o) => {
      const v = selectSlices(
        await readVolume(o.in, { seriesUid: o.series, volumeIndex: volumeIndex(o.volume) }),
        o.slices,
        o.in,
      );
      await writeVolume(o.out, v);
      process.stdout.write(`wrote ${v.slices} slice(s) ${v.rows}x${v.cols} to ${o.out}\n`);
    });

  program
    .command("eval")
    .description("benchmark table of methods x settings (MRI 4x/8x, CT 23/60 views) over ground-truth images")
    .option(
      "--data <paths...>",
      "ground-truth volumes (.nii[.gz], .npy, .cfl, .png); MR/other go to the MRI settings, CT to the CT ones",
    )
    .option("--slices <ranges>", "only these slices of every --data volume")
    .option(
      "--phantoms <n>",
      "also n held-out phantoms per modality (brain, ct-body; seeds from 1000000, never drawn in training)",
      "0",
    )
    .option("--size <N>", "phantom size", "256")
    .option(
      "--settings <list>",
      `comma-separated: ${STANDARD_SETTINGS.map((s) => s.name).join(",")}`,
      STANDARD_SETTINGS.map((s) => s.name).join(","),
    )
    .option("--mri-methods <list>", "methods for the MRI settings", "zero-filled,tv,wavelet,score")
    .option("--ct-methods <list>", "methods for the CT settings", "fbp,sirt,tv,score")
    .option("--model <dir>", "prior for the score-based methods (default: models/<modality>)")
    .requiredOption("--out <dir>", "writes eval.md and eval.json")
    .action(async (o) => {
      const volumes: Volume[] = [];
      for (const f of o.data ?? []) volumes.push(selectSlices(await readVolume(f), o.slices, f));
      const n = parseNumber("--phantoms", o.phantoms, { min: 0, integer: true });
      const size = parseNumber("--size", o.size, { min: 8, integer: true });
      for (let k = 0; k < n; k++)
        for (const kind of ["brain", "ct-body"] as const) {
          const p = generatePhantom(kind, size, 1_000_000 + k);
          volumes.push(
            makeVolume(1, size, size, p.data, { modality: kind === "brain" ? "MR" : "CT", units: p.units }),
          );
        }
      if (volumes.length === 0)
        throw new UserError("nothing to evaluate: give --data files or --phantoms N", "bad_flag", "--data");
      const names = String(o.settings)
        .split(",")
        .map((s) => s.trim());
      const settings = names.map((name) => {
        const s = STANDARD_SETTINGS.find((x) => x.name === name);
        if (!s)
          throw new UserError(
            `unknown setting '${name}' (known: ${STANDARD_SETTINGS.map((x) => x.name).join(", ")})`,
            "bad_flag",
            "--settings",
          );
        return s;
      });
      const methods = {
        mri: withModel(parseMethods(String(o.mriMethods), "mri"), o.model),
        ct: withModel(parseMethods(String(o.ctMethods), "ct"), o.model),
      };
      const bar = progressBar(1000, "eval");
      const rows = await evaluate(
        volumes,
        settings,
        (m) => methods[m],
        (setting, e) =>
          bar.update(Math.round((1000 * (e.slice + e.done / e.total)) / e.slices), `${setting} ${e.method}`),
      );
      bar.stop();
      mkdirSync(o.out, { recursive: true });
      const md = evalMarkdown(rows);
      await writeFileAtomic(join(o.out, "eval.md"), Buffer.from(md + "\n"));
      await writeJson(join(o.out, "eval.json"), { volumes: volumes.length, rows });
      process.stdout.write(md + "\n");
    });

  program
    .command("demo")
    .description(
      "Shepp-Logan 256: MRI 4x and CT 60 views with the classical methods; prints metrics, writes PNGs",
    )
    .option("--out <dir>", "output folder", "scorerecon-demo")
    .action(async (o) => {
      const phantom = generatePhantom("shepp-logan", 256, 0);
      const volume = makeVolume(1, 256, 256, phantom.data);
      const studies: [string, Acquisition, string][] = [
        [
          "mri-4x",
          {
            modality: "mri",
            rows: 256,
            cols: 256,
            mask: { kind: "random", acceleration: 4, centerFraction: 0.08, seed: 0 },
            noiseSigma: 0,
          },
          "zero-filled,tv,wavelet",
        ],
        [
          "ct-60-views",
          { modality: "ct", size: 256, views: 60, detectors: 363, noise: { kind: "none" } },
          "fbp,sirt,tv",
        ],
      ];
      for (const [name, acq, list] of studies) {
        const methods = parseMethods(list, acq.modality);
        const result = await withProgress(1, methods.length, (onProgress) =>
          reconstruct({ acquisition: acq, methods, volume, onProgress }),
        );
        const dir = join(o.out, name);
        await writeResults(dir, result, volume);
        process.stdout.write(`\n${describeAcquisition(acq)}\n${metricsTable(result)}\nwrote ${dir}/\n`);
      }
    });
}

const volumeIndex = (v: string | undefined) =>
  v === undefined ? undefined : parseNumber("--volume", v, { min: 0, integer: true });

/** --model applies to every score-based method that does not name its own. */
function withModel(requests: MethodRequest[], model: string | undefined): MethodRequest[] {
  if (!model) return requests;
  return requests.map((r) =>
    "model" in r.params && !r.params.model ? { ...r, params: { ...r.params, model } } : r,
  );
}

function modalityFor(flag: string | undefined, v: Volume) {
  if (flag) return parseModality(flag);
  if (v.modality === "MR") return "mri" as const;
  if (v.modality === "CT") return "ct" as const;
  throw new UserError(
    "this input does not record its modality: give --modality mri|ct",
    "bad_flag",
    "--modality",
  );
}

async function maskFor(acq: Acquisition, v: Volume): Promise<Uint8Array | undefined> {
  if (acq.modality !== "mri" || !("file" in acq.mask)) return undefined;
  return readMask(acq.mask.file, v.rows, v.cols);
}

async function withProgress<T>(
  slices: number,
  methods: number,
  run: (
    onProgress: (e: { slice: number; method: string; done: number; total: number }) => void,
  ) => Promise<T>,
): Promise<T> {
  const units = slices * methods;
  const bar = progressBar(units * 1000, "reconstruct");
  let started = 0;
  let current = "";
  try {
    return await run((e) => {
      if (`${e.method}/${e.slice}` !== current) {
        current = `${e.method}/${e.slice}`;
        started++;
      }
      bar.update(
        Math.round((started - 1 + e.done / e.total) * 1000),
        `${e.method} slice ${e.slice + 1}/${slices}`,
      );
    });
  } finally {
    bar.stop();
  }
}

const OUTPUT_FORMATS = ["nifti", "npy", "cfl", "dicom"] as const;
const EXTENSION = { nifti: ".nii.gz", npy: ".npy", cfl: ".cfl", dicom: "" } as const;

async function writeResults(
  dir: string,
  result: ReconResult,
  reference?: Volume,
  format: (typeof OUTPUT_FORMATS)[number] = "nifti",
  anonymise = false,
): Promise<void> {
  const ext = EXTENSION[format];
  mkdirSync(dir, { recursive: true });
  // One display window for every method (the reference's range) so the PNGs compare fairly.
  const windowFrom = reference ?? result.results[0].volume;
  let min = Infinity,
    max = -Infinity;
  for (const v of windowFrom.data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mid = Math.floor(windowFrom.slices / 2);
  if (reference) await writePng(join(dir, "reference.png"), sliceOf(reference, mid), { min, max });
  for (const r of result.results) {
    if (format === "dicom") {
      const settings = Object.entries(r.params)
        .map(([k, x]) => `${k}=${x}`)
        .join(" ");
      const derivation = `scorerecon ${r.method}${settings ? ` (${settings})` : ""} from ${describeAcquisition(result.acquisition)}`;
      await writeDicomSeries(join(dir, r.method), r.volume, {
        description: `scorerecon ${r.method}`,
        derivation,
        anonymise,
      });
    } else await writeVolume(join(dir, `${r.method}${ext}`), r.volume);
    if (r.uncertainty) {
      await writeVolume(join(dir, `${r.method}-std${ext}`), r.uncertainty);
      await writePng(join(dir, `${r.method}-std.png`), sliceOf(r.uncertainty, mid));
    }
    await writePng(join(dir, `${r.method}.png`), sliceOf(r.volume, mid), { min, max });
  }
}

function metricsTable(result: ReconResult): string {
  const rows = result.results.map((r) => [
    r.method,
    r.metrics ? r.metrics.psnr.toFixed(2) : "-",
    r.metrics ? r.metrics.ssim.toFixed(4) : "-",
    r.metrics ? r.metrics.nmse.toExponential(3) : "-",
    r.seconds.toFixed(2),
  ]);
  const head = ["method", "PSNR dB", "SSIM", "NMSE", "seconds"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, Buffer.from(JSON.stringify(value, null, 2) + "\n"));
}

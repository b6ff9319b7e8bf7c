/** The `scorerecon` subcommands. Each parses its flags, calls the library and prints. */
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import type { Command } from "commander";
import { PHANTOM_KINDS, generatePhantom, type PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import { makeVolume, padOrCrop, sliceOf } from "../image/volume.js";
import { valueRange } from "../image/stats.js";
import { checkScorable } from "../metrics/index.js";
import {
  isDicomPath,
  listDicomSeries,
  readVolume,
  writeFileAtomic,
  writeJsonAtomic,
  writeNpyArray,
  writeVolume,
} from "../io/index.js";
import {
  ACQUISITION_RANGES as R,
  describeAcquisition,
  forwardModel,
  simulateSlice,
  type Acquisition,
} from "../recon/acquisition.js";
import { findMethod, parseMethods, targetModality, type RequestTarget } from "../recon/methods.js";
import {
  evalMarkdown,
  evaluate,
  perImageMarkdown,
  withPseudoCt,
  STANDARD_SETTINGS,
  type EvalInput,
} from "../recon/evaluate.js";
import { inHounsfieldUnits, reconstruct } from "../recon/reconstruct.js";
import { toOperatorUnits } from "../recon/slice-task.js";
import {
  acquisitionFromFlags,
  addOperatorFlags,
  checkFolder,
  checkNotInput,
  checkVoxels,
  IMAGE_SIDE,
  modalityFor,
  parseChoice,
  parseInteger,
  parseNumber,
  selectSlices,
  sliceIndices,
  volumeIndex,
  withModel,
  type OperatorFlags,
} from "./options.js";
import { engineOption, startEngine } from "./engine-option.js";
import { progressBar } from "./progress.js";
import { measurementPaths } from "./measurements.js";
import { maskFor } from "./mask-file.js";
import { registerReconstruct } from "./reconstruct-command.js";
import { metricsTable, writeResults } from "./report.js";

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
      const size = parseInteger("--size", o.size, IMAGE_SIDE);
      const count = parseNumber("--count", o.count, { min: 1, integer: true });
      checkVoxels("--count", size, count);
      const seed = parseInteger("--seed", o.seed, R.seed);
      if (seed + count - 1 > R.seed.max)
        throw new UserError(`--seed + --count - 1 must be <= ${R.seed.max}`, "bad_flag", "--seed");
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
    const out = measurementPaths(o.out);
    checkNotInput([out.data, out.mask, out.sidecar], o.in);
    const volume = selectSlices(
      await readVolume(o.in, { seriesUid: o.series, volumeIndex: volumeIndex(o.volume) }),
      o.slices,
      o.in,
    );
    checkScorable(volume, o.in, "--in");
    const modality = modalityFor(o.modality, volume);
    const acq = acquisitionFromFlags(modality, volume.rows, volume.cols, o as OperatorFlags);
    const model = forwardModel(acq, await maskFor(acq, volume));
    const seed = parseInteger("--seed", o.seed, R.seed);
    const hu = inHounsfieldUnits(volume, acq);
    const [views, dets] = model.op.output.shape;
    const perSlice = model.op.output.complex ? 2 * views * dets : views * dets;
    const data = new Float32Array(volume.slices * perSlice);
    for (let k = 0; k < volume.slices; k++) {
      const x = toOperatorUnits(sliceOf(volume, k).data, acq, hu);
      data.set(simulateSlice(model, x, seed + k), k * perSlice);
    }
    const shape = volume.slices > 1 ? [volume.slices, views, dets] : [views, dets];
    await writeNpyArray(out.data, { shape, data, complex: model.op.output.complex });
    if (model.mask)
      await writeNpyArray(out.mask, {
        shape: [volume.rows, volume.cols],
        data: model.mask,
        dtype: "uint8",
      });
    await writeJsonAtomic(out.sidecar, {
      acquisition: acq,
      units: hu ? "HU" : volume.units,
      spacing: volume.spacing,
      modality: volume.modality,
      seed,
    });
    process.stdout.write(
      `${describeAcquisition(acq)}\nwrote ${out.data}${/\.cfl$/i.test(out.data) ? `, ${out.data.slice(0, -4)}.hdr` : ""}${model.mask ? `, ${out.mask}` : ""}, ${out.sidecar}\n`,
    );
  });

  registerReconstruct(program);

  program
    .command("info")
    .description("describe an image or array file: dimensions, spacing, modality, units, value range")
    .argument("<path>", "a .nii[.gz], .npy, .cfl or .png file, or a DICOM file or folder")
    .option("--volume <K>", "the volume of a 4-D NIfTI to describe (zero-based)")
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
      const v = await readVolume(path, { volumeIndex: volumeIndex(o.volume) });
      const { min, max } = valueRange(v.data);
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
      checkNotInput([o.out], o.in);
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
      "--ct-from-mri",
      "also evaluate the MR/other --data images in the CT settings, mapped to HU by a fixed curve (pseudo-CT: real anatomy, not real CT)",
    )
    .option(
      "--phantoms <n>",
      "also n held-out phantoms per modality (brain, ct-body; seeds from 1000000, never drawn in training)",
      "0",
    )
    .option("--phantom-seed <S>", "seed of the first phantom (tuning uses seeds from 2000000)", "1000000")
    .option(
      "--size <N>",
      "image size: phantoms are drawn at N x N, --data slices centred in N x N (zero-padded or cropped)",
      "256",
    )
    .option(
      "--settings <list>",
      `comma-separated: ${STANDARD_SETTINGS.map((s) => s.name).join(",")}`,
      STANDARD_SETTINGS.map((s) => s.name).join(","),
    )
    .option("--mri-methods <list>", "methods for the MRI settings", "zero-filled,tv,wavelet,score")
    .option("--ct-methods <list>", "methods for the CT settings", "fbp,sirt,tv,score")
    .option("--model <dir>", "prior for the score-based methods (default: models/<modality>)")
    .requiredOption("--out <dir>", "writes eval.md and eval.json")
    .addOption(engineOption())
    .action(async (o) => {
      const n = parseNumber("--phantoms", o.phantoms, { min: 0, max: 10_000, integer: true });
      const size = parseInteger("--size", o.size, IMAGE_SIDE);
      const seed0 = parseInteger("--phantom-seed", o.phantomSeed, R.seed);
      checkFolder("--out", o.out);
      const inputs: EvalInput[] = [];
      for (const f of o.data ?? []) {
        const v = await readVolume(f);
        const volume = padOrCrop(selectSlices(v, o.slices, f), size, size);
        checkScorable(volume, f, "--data");
        const labels = sliceIndices(o.slices, v.slices, f).map((k) => `${basename(f)} slice ${k}`);
        inputs.push(...(o.ctFromMri ? withPseudoCt({ volume, labels }) : [{ volume, labels }]));
      }
      for (let k = 0; k < n; k++)
        for (const kind of ["brain", "ct-body"] as const) {
          const p = generatePhantom(kind, size, seed0 + k);
          inputs.push({
            volume: makeVolume(1, size, size, p.data, {
              modality: kind === "brain" ? "MR" : "CT",
              units: p.units,
            }),
            labels: [`${kind} phantom seed ${seed0 + k}`],
          });
        }
      if (inputs.length === 0)
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
      const lists = { mri: String(o.mriMethods), ct: String(o.ctMethods) };
      // Checked once here; each setting's requests are then made for its acquisition.
      const methods = (target: RequestTarget) =>
        withModel(parseMethods(lists[targetModality(target)], target), o.model);
      if ([...methods("mri"), ...methods("ct")].some((m) => findMethod(m.name).needsPrior))
        await startEngine(o.engine);
      const bar = progressBar(1000, "eval");
      const rows = await evaluate(inputs, settings, methods, (setting, e) =>
        bar.update(Math.round((1000 * (e.slice + e.done / e.total)) / e.slices), `${setting} ${e.method}`),
      );
      bar.stop();
      mkdirSync(o.out, { recursive: true });
      const md = `${evalMarkdown(rows)}\n\nPer image:\n\n${perImageMarkdown(rows)}`;
      await writeFileAtomic(join(o.out, "eval.md"), Buffer.from(md + "\n"));
      await writeJsonAtomic(join(o.out, "eval.json"), { volumes: inputs.length, rows });
      process.stdout.write(md + "\n");
    });

  program
    .command("demo")
    .description(
      "Shepp-Logan 256: MRI 4x and CT 60 views with the classical methods; prints metrics, writes PNGs",
    )
    .option("--out <dir>", "output folder", "scorerecon-demo")
    .action(async (o) => {
      checkFolder("--out", o.out);
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
        const methods = parseMethods(list, acq);
        const bar = progressBar(methods.length, name);
        const result = await reconstruct({
          acquisition: acq,
          methods,
          volume,
          onProgress: (e) =>
            bar.update(methods.findIndex((m) => m.name === e.method) + e.done / e.total, e.method),
        }).finally(() => bar.stop());
        const dir = join(o.out, name);
        await writeResults(dir, result, volume);
        process.stdout.write(`\n${describeAcquisition(acq)}\n${metricsTable(result)}\nwrote ${dir}/\n`);
      }
    });
}

/** `scorerecon train` and `scorerecon sample`. */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { PHANTOM_KINDS, type PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import { montage } from "../image/montage.js";
import { linePlot } from "../image/plot.js";
import { keepSlices, type Volume } from "../image/volume.js";
import { isDicomPath, readVolume, writePng } from "../io/index.js";
import { BACKENDS, initBackend } from "../prior/backend.js";
import { readPriorInfo, loadPrior } from "../prior/checkpoint.js";
import { SAMPLE_RANGES, samplePrior } from "../sampling/prior-sample.js";
import type { SdeConfig } from "../prior/sde.js";
import { AUGMENTATIONS, AXES, parseAugmentations } from "../prior/data.js";
import { checkThreads, THREADS } from "../prior/parallel.js";
import { requireTrainingData, trainPrior, TRAIN_RANGES as T } from "../prior/train.js";
import { DEFAULT_UNET } from "../prior/unet.js";
import {
  checkFolder,
  parseChoice,
  parseInteger,
  parseModality,
  parseNumber,
  sliceIndices,
} from "./options.js";
import { engineChoice, engineOption, startEngine } from "./engine-option.js";
import { progressBar } from "./progress.js";

const IMAGE_FILE = /\.(nii|nii\.gz|npy|png)$/i;

interface DataSource {
  path: string;
  /** Slice ranges of this source (`PATH@RANGES`), else --slices. */
  slices?: string;
}

/**
 * `--data` entries, `PATH` or `PATH@RANGES`, expanded to image files: NIfTI, npy, PNG and DICOM
 * (by extension or by the DICOM magic), folders searched recursively. A DICOM file is read on its
 * own (one slice, or its frames), so a folder of several series trains on all of them.
 */
function collectImageFiles(entries: string[], slices: string | undefined): DataSource[] {
  const out: DataSource[] = [];
  for (const entry of entries) {
    const at = entry.lastIndexOf("@");
    const path = at > 0 ? entry.slice(0, at) : entry;
    const own = at > 0 ? entry.slice(at + 1) : slices;
    const walk = (p: string) => {
      if (!existsSync(p)) throw new UserError(`${p}: no such file or folder`, "not_found", "--data");
      if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
      else if (IMAGE_FILE.test(p) || isDicomPath(p)) out.push({ path: p, slices: own });
    };
    walk(path);
  }
  return out;
}

/** The contiguous runs of a source's slice ranges as separate slabs, so no view crosses a gap. */
function slabsOf(v: Volume, ranges: string | undefined, file: string): Volume[] {
  const keep = sliceIndices(ranges, v.slices, file);
  const runs: number[][] = [];
  for (const k of keep) {
    const run = runs.at(-1);
    if (run && run.at(-1) === k - 1) run.push(k);
    else runs.push([k]);
  }
  return runs.map((r) => keepSlices(v, r));
}

/** loss.csv -> loss.png (moving average over 50 steps, y scaled to its range). */
export async function writeLossPlot(csv: string, png: string): Promise<void> {
  const losses = readFileSync(csv, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((line) => Number(line.split(",")[1]))
    .filter(Number.isFinite);
  await writePng(png, linePlot(losses), { min: 0, max: 1 });
}

const backendOption = () =>
  new Option("--backend <name>", `TensorFlow.js backend: ${BACKENDS.join("|")} (env SCORERECON_BACKEND)`);
const log = (line: string) => process.stderr.write(line + "\n");

export function registerPriorCommands(program: Command): void {
  program
    .command("train")
    .description("train a score-based prior by denoising score matching")
    .option(
      "--data <paths...>",
      "training images: NIfTI/npy/PNG/DICOM files or folders (recursive); PATH@RANGES uses only those slices of PATH",
    )
    .option(
      "--slices <ranges>",
      "use only these slices of every data volume without its own @RANGES, e.g. 20:80,100:160 (end exclusive)",
    )
    .option(
      "--axes <list>",
      `slice 3-D volumes along these axes: ${AXES.join(",")} (coronal and sagittal views take only the kept slices' voxels)`,
      "axial",
    )
    .option(
      "--augment <list>",
      `augmentations: default, none, or a list of ${AUGMENTATIONS.join(",")} (default: all but blur, less gamma, contrast and invert for CT)`,
      "default",
    )
    .option("--phantom <kind>", `also (or only) train on procedural phantoms: ${PHANTOM_KINDS.join("|")}`)
    .requiredOption("--modality <m>", "mri|ct")
    .option("--size <N>", "training crop size", "64")
    .option("--steps <S>", "training steps", "20000")
    .option("--batch <B>", "batch size", "8")
    .option("--channels <C>", "network base width", String(DEFAULT_UNET.channels))
    .option(
      "--channel-mult <list>",
      "channel multiplier per U-Net level, e.g. 1,2,2,2 (one more level doubles the receptive field)",
      DEFAULT_UNET.channelMult.join(","),
    )
    .option("--attention", "self-attention at the lowest resolution (NCSN++ AttnBlock)")
    .option("--sde <name>", "ve|vp|subvp", "ve")
    .option("--sigma-max <s>", "VE sigma_max", "50")
    .option("--lr <r>", "Adam learning rate", "2e-4")
    .option("--checkpoint-every <n>", "steps between checkpoints", "500")
    .option(
      "--init <model>",
      "start from an existing prior's weights (e.g. a shipped one): its network unless --channels, --channel-mult or --attention say otherwise, then every parameter that fits is copied",
    )
    .option("--seed <S>", "seed", "0")
    .option(
      "--threads <N>",
      `threads sharing each batch's gradient (this one and N - 1 workers), one core each, ${THREADS.min}-${THREADS.max}, at most --batch (the same training up to float rounding)`,
      "1",
    )
    .option("--resume", "continue from the training state in --out")
    .option("--grid <count>", "unconditional samples in the grid written at the end (0: none)", "9")
    .option("--grid-steps <n>", "sampler steps for that grid", "200")
    .requiredOption(
      "--out <dir>",
      "prior folder: model.json, weights.bin, prior.json, loss.csv, loss.png, samples.png",
    )
    .addOption(backendOption())
    .addOption(engineOption())
    .action(async (o, cmd: Command) => {
      // Checked before any work: the engine itself starts only for the sample grid at the end.
      engineChoice(o.engine);
      const modality = parseModality(o.modality);
      const phantom = o.phantom
        ? (parseChoice("--phantom", o.phantom, PHANTOM_KINDS) as PhantomKind)
        : undefined;
      const size = parseInteger("--size", o.size, T.size);
      const steps = parseInteger("--steps", o.steps, T.steps);
      const batch = parseInteger("--batch", o.batch, T.batch);
      const threads = parseInteger("--threads", o.threads, THREADS);
      checkThreads(threads, batch);
      const lr = parseNumber("--lr", o.lr, T.lr);
      const checkpointEvery = parseInteger("--checkpoint-every", o.checkpointEvery, T.checkpointEvery);
      const seed = parseInteger("--seed", o.seed, T.seed);
      const channels = parseInteger("--channels", o.channels, T.channels);
      if (channels % 4)
        throw new UserError(
          `--channels must be a multiple of 4 (GroupNorm), got ${channels}`,
          "bad_flag",
          "--channels",
        );
      const channelMult = String(o.channelMult)
        .split(",")
        .map((m) => parseInteger("--channel-mult", m.trim(), T.channelMult));
      parseInteger("--channel-mult's level count", String(channelMult.length), T.levels);
      const sdeName = parseChoice("--sde", o.sde, ["ve", "vp", "subvp"] as const);
      // --init with no network flag keeps that prior's network (fine-tuning).
      const networkGiven = ["channels", "channelMult", "attention"].some(
        (f) => cmd.getOptionValueSource(f) === "cli",
      );
      const network =
        o.init && !networkGiven
          ? readPriorInfo(o.init).info.network
          : {
              ...DEFAULT_UNET,
              channels,
              channelMult,
              attention: !!o.attention,
              scaleBySigma: sdeName === "ve",
            };
      const sde: SdeConfig =
        sdeName === "ve"
          ? { name: "ve", sigmaMin: 0.01, sigmaMax: parseNumber("--sigma-max", o.sigmaMax, T.sigmaMax) }
          : { name: sdeName, betaMin: 0.1, betaMax: 20 };
      const axes = String(o.axes)
        .split(",")
        .map((a) => parseChoice("--axes", a.trim(), AXES));
      const augment = parseAugmentations(o.augment, modality);
      const files = o.data ? collectImageFiles(o.data, o.slices) : [];
      if (o.data && files.length === 0)
        throw new UserError(
          `no NIfTI, npy, PNG or DICOM images found in ${o.data.join(", ")}`,
          "bad_input",
          "--data",
        );
      requireTrainingData(files.length, phantom);
      checkFolder("--out", o.out);
      const volumes: Volume[] = [];
      const sources: { source: string; slices?: string }[] = [];
      for (const f of files)
        for (const slab of slabsOf(await readVolume(f.path), f.slices, f.path)) {
          volumes.push(slab);
          sources.push({ source: f.path, ...(f.slices ? { slices: f.slices } : {}) });
        }
      const backend = await initBackend(o.backend, log);
      mkdirSync(o.out, { recursive: true });
      const csv = join(o.out, "loss.csv");
      if (!o.resume || !existsSync(csv)) writeFileSync(csv, "step,loss,seconds\n");
      const stop = new AbortController();
      const onSigint = () => {
        log("\nscorerecon: interrupted — saving a checkpoint (resume with --resume)");
        stop.abort();
      };
      process.once("SIGINT", onSigint);
      const bar = progressBar(steps, "train");
      const t0 = performance.now();
      let first: number | undefined;
      let rows: string[] = [];
      const description = [
        files.length
          ? // The 2-D slices each file gave (all axes) are prior.json's dataFiles counts.
            `${axes.join(", ")} slices of ${files.length} file${files.length === 1 ? "" : "s"} (${o.data.join(", ")})`
          : "",
        phantom ? `${phantom} phantoms` : "",
      ]
        .filter(Boolean)
        .join(" + ");
      try {
        const r = await trainPrior({
          modality,
          volumes,
          sources,
          axes,
          augment,
          phantom,
          dataDescription: description,
          size,
          steps,
          batch,
          out: o.out,
          resume: !!o.resume,
          init: o.init,
          sde,
          network,
          lr,
          checkpointEvery,
          seed,
          backend,
          threads,
          command: `scorerecon ${process.argv.slice(2).join(" ")}`,
          signal: stop.signal,
          onStep: (step, loss) => {
            first ??= step - 1;
            const secs = (performance.now() - t0) / 1000;
            rows.push(`${step},${loss.toFixed(6)},${secs.toFixed(1)}`);
            if (rows.length >= 50) {
              appendFileSync(csv, rows.join("\n") + "\n");
              rows = [];
            }
            bar.update(step, `loss ${loss.toFixed(4)} | ${((step - first) / secs).toFixed(2)} steps/s`);
          },
        });
        if (rows.length) appendFileSync(csv, rows.join("\n") + "\n");
        bar.stop();
        await writeLossPlot(csv, join(o.out, "loss.png"));
        process.stdout.write(
          `${r.interrupted ? "stopped" : "trained"} at step ${r.steps}, loss ${r.finalLoss?.toFixed(4)}, ${r.seconds.toFixed(0)} s${r.init ? ` (${r.init.copied} of ${r.init.of} parameter tensors from ${o.init})` : ""}; wrote ${join(o.out, "/")}\n`,
        );
        const count = parseNumber("--grid", o.grid, { min: 0, max: SAMPLE_RANGES.count.max, integer: true });
        if (!r.interrupted && count > 0) {
          await startEngine(o.engine, 1, log);
          const prior = loadPrior(o.out);
          const gridSteps = parseInteger("--grid-steps", o.gridSteps, SAMPLE_RANGES.steps);
          const sbar = progressBar(gridSteps, "samples");
          const images = samplePrior(prior, {
            count,
            size,
            steps: gridSteps,
            sampler: "pc",
            seed: 0,
            onStep: (d) => sbar.update(d),
          });
          sbar.stop();
          await writePng(join(o.out, "samples.png"), montage(images), { min: 0, max: 1 });
        }
      } finally {
        process.off("SIGINT", onSigint);
        bar.stop();
      }
    });

  program
    .command("sample")
    .description("draw unconditional samples from a prior and write them as a PNG grid")
    .requiredOption("--model <dir>", "prior folder (e.g. models/mri)")
    .option("--count <K>", "number of samples", "16")
    .option("--steps <N>", "sampler steps (noise levels)", "500")
    .option("--size <N>", "image size (default: the prior's training size)")
    .option("--sampler <s>", "pc (reverse diffusion + Langevin) | ode (probability flow, Heun)", "pc")
    .option("--snr <r>", "Langevin corrector signal-to-noise ratio", "0.16")
    .option("--seed <S>", "seed", "0")
    .requiredOption("--out <grid.png>", "output PNG grid (window [0, 1] of the prior's normalised units)")
    .addOption(backendOption())
    .addOption(engineOption())
    .action(async (o) => {
      engineChoice(o.engine);
      if (!/\.png$/i.test(o.out))
        throw new UserError(
          `--out must name a .png file (the sample grid), got '${o.out}'`,
          "bad_flag",
          "--out",
        );
      await initBackend(o.backend, log);
      await startEngine(o.engine, 1, log);
      const prior = loadPrior(o.model);
      const steps = parseInteger("--steps", o.steps, SAMPLE_RANGES.steps);
      const count = parseInteger("--count", o.count, SAMPLE_RANGES.count);
      const size = o.size ? parseInteger("--size", o.size, T.size) : prior.info.imageSize;
      const sampler = parseChoice("--sampler", o.sampler, ["pc", "ode"] as const);
      const bar = progressBar(steps, "sample");
      const t0 = performance.now();
      const images = samplePrior(prior, {
        count,
        size,
        steps,
        sampler,
        snr: parseNumber("--snr", o.snr, { min: 0, max: 100 }),
        seed: parseInteger("--seed", o.seed, T.seed),
        onStep: (d) => bar.update(d),
      });
      bar.stop();
      await writePng(o.out, montage(images), { min: 0, max: 1 });
      process.stdout.write(
        `wrote ${count} samples (${size}x${size}, ${sampler}, ${steps} steps, ${((performance.now() - t0) / 1000).toFixed(1)} s) to ${o.out}\n`,
      );
    });
}

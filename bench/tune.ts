/**
 * `node dist/bench/tune.js`: tuning of the default methods on a VALIDATION set of docs/tuning.md
 * (never the test set). `--validation ood` (default): the out-of-distribution validation images
 * that `node dist/bench/ood-data.js` writes to data/ood/validation (real MR slices of a subject in
 * no training set), centred in 256 x 256, for the MRI settings, and the same images as pseudo-CT
 * (`scorerecon eval --ct-from-mri`) for the CT settings. `--validation colin` (in-distribution):
 * Colin27 (`/usr/share/mricron/templates/ch2.nii.gz`, Debian package mricron-data) axial slices
 * 82 and 88 and the `brain` phantom seed 2000000 for the MRI settings; `ct-body` phantoms seeds
 * 2000000 and 2000001 for the CT settings.
 * Each method runs through the pipeline of `scorerecon eval` (src/recon/evaluate.ts) on one core
 * (the calling thread, 1 intra-op thread per network evaluation); prints one line per setting and
 * method: mean PSNR, per-image PSNR (in the order above), seconds per slice (the pipeline's wall
 * time) and CPU seconds per slice (steadier on a shared machine), and appends it as JSON to --out.
 * Usage: node dist/bench/tune.js --settings mri-4x,mri-8x --methods "score:steps=30,score:steps=40:samples=1"
 *        [--ct-methods LIST] [--validation ood|colin] [--ood DIR] [--colin PATH] [--out tune.jsonl]
 * Methods are separated by commas (as in `scorerecon eval --mri-methods`); --methods serves the
 * MRI settings and, without --ct-methods, the CT ones too.
 */
import { appendFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { generatePhantom } from "../phantoms/index.js";
import { makeVolume, padOrCrop, type Volume } from "../src/image/volume.js";
import { readVolume } from "../src/io/index.js";
import { initEngine, setEngineThreads } from "../src/prior/engine.js";
import { evaluate, STANDARD_SETTINGS, withPseudoCt, type EvalInput } from "../src/recon/evaluate.js";
import { parseMethods } from "../src/recon/methods.js";
import { selectSlices } from "../src/cli/options.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

const size = 256;
const COLIN_SLICES = [82, 88];
const MRI_PHANTOM_SEEDS = [2_000_000];
const CT_PHANTOM_SEEDS = [2_000_000, 2_000_001];

function phantom(kind: "brain" | "ct-body", seed: number): EvalInput {
  const p = generatePhantom(kind, size, seed);
  const volume: Volume = makeVolume(1, size, size, p.data, {
    modality: kind === "brain" ? "MR" : "CT",
    units: p.units,
  });
  return { volume, labels: [`${kind} phantom seed ${seed}`] };
}

async function oodInputs(dir: string): Promise<EvalInput[]> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".nii.gz"))
    .sort();
  if (files.length === 0) {
    console.error(`tune: no images in ${dir} (run node dist/bench/ood-data.js first)`);
    process.exit(2);
  }
  const out: EvalInput[] = [];
  for (const f of files) {
    const v = await readVolume(join(dir, f));
    const volume = padOrCrop(v, size, size);
    const labels = Array.from({ length: v.slices }, (_, k) => `${f} slice ${k}`);
    out.push(...withPseudoCt({ volume, labels }));
  }
  return out;
}

async function colinInputs(colin: string): Promise<EvalInput[]> {
  const v = await readVolume(colin);
  const ranges = COLIN_SLICES.join(",");
  return [
    {
      volume: padOrCrop(selectSlices(v, ranges, colin), size, size),
      labels: COLIN_SLICES.map((k) => `ch2 slice ${k}`),
    },
    ...MRI_PHANTOM_SEEDS.map((s) => phantom("brain", s)),
    ...CT_PHANTOM_SEEDS.map((s) => phantom("ct-body", s)),
  ];
}

/** Splits a method list at the commas between methods (a method's own options use `:`). */
const methodList = (list: string) =>
  list
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean);

async function main() {
  const names = arg("settings", "mri-4x,mri-8x,ct-23-views,ct-60-views").split(",");
  const settings = names.map((name) => {
    const s = STANDARD_SETTINGS.find((x) => x.name === name);
    if (!s) {
      console.error(
        `tune: unknown setting '${name}' (known: ${STANDARD_SETTINGS.map((x) => x.name).join(", ")})`,
      );
      process.exit(2);
    }
    return s;
  });
  const mri = methodList(arg("methods", "score"));
  const ct = methodList(arg("ct-methods", arg("methods", "score")));
  const out = arg("out", "");
  await initEngine(arg("engine", "auto"), (line) => console.error(line));
  setEngineThreads(1);
  const inputs =
    arg("validation", "ood") === "colin"
      ? await colinInputs(arg("colin", "/usr/share/mricron/templates/ch2.nii.gz"))
      : await oodInputs(arg("ood", "data/ood/validation"));
  for (const setting of settings)
    for (const spec of setting.modality === "mri" ? mri : ct) {
      const c0 = process.cpuUsage();
      const rows = await evaluate(inputs, [setting], (acq) => parseMethods(spec, acq));
      const c = process.cpuUsage(c0);
      for (const r of rows) {
        const cpu = (c.user + c.system) / 1e6 / r.slices;
        const line = {
          setting: r.setting,
          method: spec,
          psnr: r.psnr[0],
          images: r.images.map((i) => [i.image, i.psnr]),
          seconds: r.seconds[0],
          cpuSeconds: cpu,
        };
        console.log(
          `${r.setting} | ${spec} | ${r.psnr[0].toFixed(2)} | ${r.images.map((i) => i.psnr.toFixed(2)).join(" ")} | ` +
            `${r.seconds[0].toFixed(1)} s/slice | ${cpu.toFixed(1)} CPU s/slice`,
        );
        if (out) appendFileSync(out, JSON.stringify(line) + "\n");
      }
    }
}

await main();

/**
 * Builds the out-of-distribution evaluation images: real MR slices of subjects that no shipped
 * prior was trained on, from Debian packages (downloaded with `apt-get download`, unpacked with
 * `dpkg -x`), written as NIfTI files in OUT/validation (for tuning) and OUT/test (for the README).
 * Run: `npm run build && node dist/bench/ood-data.js [OUT]` (default data/ood, ignored by git).
 *
 * Never from the packages reserved for independent evaluation, and never from the training data
 * (models/README.md: Colin27 of mricron-data, nipy's anatomical test volume, the phantoms).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { makeVolume, stackSlices, type Volume } from "../src/image/volume.js";
import { slicesAlong } from "../src/prior/data.js";
import { readVolume, writeVolume } from "../src/io/index.js";

const out = process.argv[2] ?? "data/ood";
const debs = join(out, "debs");

/** Unpacks a Debian package into OUT/debs/NAME and returns that folder. */
function unpack(pkg: string): string {
  const dir = join(debs, pkg);
  if (existsSync(dir)) return dir;
  mkdirSync(debs, { recursive: true });
  execFileSync("apt-get", ["download", "-q", pkg], { cwd: debs, stdio: "inherit" });
  const deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb`);
  execFileSync("dpkg", ["-x", join(debs, deb), dir]);
  return dir;
}

/** A raw little-endian int16/uint16 image, gzip-compressed as Debian ships documentation. */
function rawImage(path: string, rows: number, cols: number, type: "int16" | "uint16"): Volume {
  const b = gunzipSync(readFileSync(path));
  if (b.length !== rows * cols * 2)
    throw new Error(`${path}: ${b.length} bytes, expected ${rows * cols * 2}`);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++)
    data[i] = type === "int16" ? b.readInt16LE(2 * i) : b.readUInt16LE(2 * i);
  return makeVolume(1, rows, cols, data, { modality: "MR" });
}

interface Item {
  set: "validation" | "test";
  name: string;
  make: () => Promise<Volume>;
  /** What it is, for docs/evaluation.md. */
  what: string;
}

const elastix = () => join(unpack("elastix-doc"), "usr/share/doc/elastix/help/exampleinput");
const items: Item[] = [
  {
    set: "validation",
    name: "elastix-moving",
    what: "elastix-doc: 2-D MR brain slice (moving image of the registration example; it looks simulated, possibly BrainWeb, which is built from Colin27: validation only), 256 x 256",
    make: async () => rawImage(join(elastix(), "moving.raw.gz"), 256, 256, "int16"),
  },
  {
    set: "validation",
    name: "elastix-fixed",
    what: "elastix-doc: 2-D MR brain slice of the same subject (fixed image), 256 x 256",
    make: async () => rawImage(join(elastix(), "fixed.raw.gz"), 256, 256, "int16"),
  },
  {
    set: "test",
    name: "matplotlib-s1045",
    what: "python-matplotlib-data: MR brain slice s1045.ima (raw uint16), 256 x 256",
    make: async () =>
      rawImage(
        join(unpack("python-matplotlib-data"), "usr/share/matplotlib/mpl-data/sample_data/s1045.ima.gz"),
        256,
        256,
        "uint16",
      ),
  },
  ...(["axial", "coronal", "sagittal"] as const).map((axis): Item => ({
    set: "test",
    name: `inia19-${{ axial: "slices", coronal: "rows", sagittal: "cols" }[axis]}`,
    what: `mricron-data: INIA19 rhesus macaque T1 template (inia19-t1-brain.nii.gz, 0.5 mm), three slices 16 apart through the middle, across its stored ${{ axial: "slice", coronal: "row", sagittal: "column" }[axis]} axis`,
    make: async () => {
      const v = await readVolume(
        join(unpack("mricron-data"), "usr/share/mricron/templates/inia19-t1-brain.nii.gz"),
      );
      const all = slicesAlong(v, axis);
      const mid = Math.floor(all.length / 2);
      return stackSlices([all[mid - 16], all[mid], all[mid + 16]], { modality: "MR" });
    },
  })),
];

for (const it of items) {
  const dir = join(out, it.set);
  mkdirSync(dir, { recursive: true });
  const v = await it.make();
  const file = join(dir, `${it.name}.nii.gz`);
  await writeVolume(file, { ...v, dicom: undefined });
  process.stdout.write(`${file}: ${v.slices} x ${v.rows} x ${v.cols} — ${it.what}\n`);
}

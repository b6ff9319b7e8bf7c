/**
 * Training data for the priors: slices of real images (in several orientations) and procedural
 * phantoms, normalised as prior.json records, and the seeded augmentations that widen what a prior
 * sees. Every random choice comes from the training RNG, so a seed gives the same batches.
 *
 * A sample is drawn by an affine map from the output crop [S, S] into a source slice (bilinear,
 * zero outside): a random centre, a 90-degree rotation and flips, a small arbitrary rotation, a
 * scale (source pixels per output pixel), or the whole slice fitted into the crop; then, opt-in, a
 * Gaussian blur (images of lower resolution or smoother anatomy, such as templates). Intensity
 * transforms follow on the normalised values: gamma, contrast and, for MRI, a contrast inversion
 * inside the head (a T1 made T2-like). For the CT prior, slices that are not in Hounsfield units
 * (MRI anatomy) are mapped to attenuation by a random monotone curve — air, fat, soft tissue and
 * a bright rim standing in for bone — so the CT prior learns real anatomical shapes and texture
 * and not only the phantom generator's.
 */
import type { Rng } from "../../operators/random.js";
import { generatePhantom, type PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import { percentile } from "../image/stats.js";
import type { Image2D, Volume } from "../image/volume.js";
import type { Normalisation } from "./checkpoint.js";

export const AUGMENTATIONS = [
  "flip",
  "rot90",
  "rotate",
  "scale",
  "whole",
  "blur",
  "gamma",
  "contrast",
  "invert",
] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/** Intensity transforms of MRI magnitude; CT values are attenuation and keep their meaning. */
const MRI_ONLY: readonly Augmentation[] = ["gamma", "contrast", "invert"];

/** Not in the defaults: kept for the trainings that measured them (models/README.md). */
const OPT_IN: readonly Augmentation[] = ["blur"];

/** What `train` uses when `--augment` is not given. */
export function defaultAugmentations(modality: "mri" | "ct"): Augmentation[] {
  return AUGMENTATIONS.filter((a) => !OPT_IN.includes(a) && (modality === "mri" || !MRI_ONLY.includes(a)));
}

/** `--augment default|none|a,b,c`. */
export function parseAugmentations(text: string | undefined, modality: "mri" | "ct"): Augmentation[] {
  if (text === undefined || text === "default") return defaultAugmentations(modality);
  if (text === "none") return [];
  const out: Augmentation[] = [];
  for (const a of text.split(",").map((s) => s.trim())) {
    if (!(AUGMENTATIONS as readonly string[]).includes(a))
      throw new UserError(
        `--augment: unknown augmentation '${a}' (choose from ${AUGMENTATIONS.join(", ")}, or none, default)`,
        "bad_flag",
        "--augment",
      );
    if (modality === "ct" && MRI_ONLY.includes(a as Augmentation))
      throw new UserError(`--augment: ${a} applies to MRI priors only`, "bad_flag", "--augment");
    out.push(a as Augmentation);
  }
  return out;
}

export type Axis = "axial" | "coronal" | "sagittal";
export const AXES: readonly Axis[] = ["axial", "coronal", "sagittal"];

/** Where a training slice comes from and in which units its values are. */
export interface TrainingSlice extends Image2D {
  /** Values are (HU + 1000) / 2000 (CT) rather than a percentile-normalised intensity. */
  readonly hu: boolean;
}

export function normalisationFor(modality: "mri" | "ct", v: Volume): Normalisation {
  return modality === "ct" && v.units === "HU" ? { kind: "hu" } : { kind: "percentile", percentile: 99.5 };
}

/** Applies the normalisation to one volume's voxels. */
export function normalise(data: Float32Array, n: Normalisation): Float32Array {
  if (n.kind === "hu") return data.map((hu) => (hu + 1000) / 2000);
  const p = percentile(data, (n.percentile ?? 99.5) / 100);
  const scale = p > 0 ? 1 / p : 1;
  return data.map((v) => v * scale);
}

/**
 * The 2-D slices of a volume along one axis: axial = the stored slices; coronal = one per row;
 * sagittal = one per column (the other two axes in storage order; spacing is not resampled).
 */
export function slicesAlong(v: Volume, axis: Axis): Image2D[] {
  const { slices: ns, rows: nr, cols: nc, data } = v;
  const out: Image2D[] = [];
  if (axis === "axial")
    for (let k = 0; k < ns; k++)
      out.push({ rows: nr, cols: nc, data: data.subarray(k * nr * nc, (k + 1) * nr * nc) });
  else if (axis === "coronal")
    for (let r = 0; r < nr; r++) {
      const d = new Float32Array(ns * nc);
      for (let k = 0; k < ns; k++) d.set(data.subarray((k * nr + r) * nc, (k * nr + r + 1) * nc), k * nc);
      out.push({ rows: ns, cols: nc, data: d });
    }
  else
    for (let c = 0; c < nc; c++) {
      const d = new Float32Array(ns * nr);
      for (let k = 0; k < ns; k++) for (let r = 0; r < nr; r++) d[k * nr + r] = data[(k * nr + r) * nc + c];
      out.push({ rows: ns, cols: nr, data: d });
    }
  // An empty slice (outside the head, say) teaches nothing.
  return out.filter((s) => s.rows >= 8 && s.cols >= 8 && s.data.some((x) => x !== 0));
}

/** A volume's slices along the axes, normalised for the prior's modality. */
export function trainingSlices(modality: "mri" | "ct", v: Volume, axes: readonly Axis[]): TrainingSlice[] {
  const n = normalisationFor(modality, v);
  const norm = { ...v, data: normalise(v.data, n) };
  return axes.flatMap((a) => slicesAlong(norm, a).map((s) => ({ ...s, hu: n.kind === "hu" })));
}

const PHANTOM_SIZE = 256;
const MAX_ROTATION = (15 * Math.PI) / 180;

/** Bilinear sample of a slice at (row, col), zero outside. */
function bilinear(src: Image2D, r: number, c: number): number {
  const r0 = Math.floor(r),
    c0 = Math.floor(c);
  const fr = r - r0,
    fc = c - c0;
  const at = (rr: number, cc: number) =>
    rr < 0 || cc < 0 || rr >= src.rows || cc >= src.cols ? 0 : src.data[rr * src.cols + cc];
  return (
    (1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c0 + 1)) +
    fr * ((1 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1))
  );
}

/** One augmented [S, S] crop of `src` into `out` (geometry only). */
function drawCrop(
  src: Image2D,
  s: number,
  aug: ReadonlySet<Augmentation>,
  rng: Rng,
  out: Float32Array,
): void {
  const whole = aug.has("whole") && rng.uniform() < 0.2;
  let scale = 1;
  if (whole) scale = Math.max(src.rows, src.cols) / s;
  else if (aug.has("scale") && rng.uniform() < 0.5) scale = Math.exp((rng.uniform() * 2 - 1) * Math.log(1.5));
  const angle =
    (aug.has("rot90") ? rng.int(4) * (Math.PI / 2) : 0) +
    (aug.has("rotate") && rng.uniform() < 0.5 ? (rng.uniform() * 2 - 1) * MAX_ROTATION : 0);
  const flipR = aug.has("flip") && rng.uniform() < 0.5,
    flipC = aug.has("flip") && rng.uniform() < 0.5;
  // Centre: the slice's centre for a whole-slice view, else any point that keeps the crop inside
  // the slice where it fits.
  const half = (s * scale) / 2;
  const pick = (n: number) => (n > 2 * half ? half + rng.uniform() * (n - 2 * half) : n / 2);
  const cr = whole ? src.rows / 2 : pick(src.rows),
    cc = whole ? src.cols / 2 : pick(src.cols);
  const cos = Math.cos(angle) * scale,
    sin = Math.sin(angle) * scale;
  for (let r = 0; r < s; r++)
    for (let c = 0; c < s; c++) {
      const y = (flipR ? s - 1 - r : r) - (s - 1) / 2,
        x = (flipC ? s - 1 - c : c) - (s - 1) / 2;
      out[r * s + c] = bilinear(src, cr - 0.5 + cos * y - sin * x, cc - 0.5 + sin * y + cos * x);
    }
}

const MAX_BLUR = 1.5;

/**
 * With `blur`, three crops in ten are smoothed by a Gaussian of standard deviation 0.5 to
 * MAX_BLUR pixels (separable, edges replicated), in place.
 */
function blurCrop(x: Float32Array, s: number, aug: ReadonlySet<Augmentation>, rng: Rng): void {
  if (!aug.has("blur") || rng.uniform() >= 0.3) return;
  const sigma = 0.5 + (MAX_BLUR - 0.5) * rng.uniform();
  const radius = Math.ceil(3 * sigma);
  const w = Float32Array.from({ length: 2 * radius + 1 }, (_, k) =>
    Math.exp(-((k - radius) ** 2) / (2 * sigma ** 2)),
  );
  const sum = w.reduce((a, b) => a + b, 0);
  for (let k = 0; k < w.length; k++) w[k] /= sum;
  const tmp = new Float32Array(x.length);
  const clamp = (i: number) => Math.min(s - 1, Math.max(0, i));
  for (let r = 0; r < s; r++)
    for (let c = 0; c < s; c++) {
      let v = 0;
      for (let k = -radius; k <= radius; k++) v += w[k + radius] * x[r * s + clamp(c + k)];
      tmp[r * s + c] = v;
    }
  for (let r = 0; r < s; r++)
    for (let c = 0; c < s; c++) {
      let v = 0;
      for (let k = -radius; k <= radius; k++) v += w[k + radius] * tmp[clamp(r + k) * s + c];
      x[r * s + c] = v;
    }
}

/** Gamma, contrast and (MRI) inversion inside the foreground, on normalised intensities. */
function intensityMri(x: Float32Array, aug: ReadonlySet<Augmentation>, rng: Rng): void {
  const gamma =
    aug.has("gamma") && rng.uniform() < 0.5 ? Math.exp((rng.uniform() * 2 - 1) * Math.log(1.6)) : 1;
  const gain = aug.has("contrast") && rng.uniform() < 0.5 ? 0.8 + 0.4 * rng.uniform() : 1;
  const invert = aug.has("invert") && rng.uniform() < 0.2;
  let top = 0;
  for (const v of x) top = Math.max(top, v);
  if (top <= 0) return;
  for (let i = 0; i < x.length; i++) {
    let v = Math.max(0, x[i]) / top;
    if (invert && v > 0.08) v = 1.08 - v;
    x[i] = top * gain * Math.pow(v, gamma);
  }
}

/** The curve that maps normalised MRI intensity to attenuation (`toAttenuation`). */
export interface AttenuationCurve {
  /** Below this intensity: air. */
  air: number;
  /** HU at the air threshold and at intensity 1 (fat -> soft tissue, or reversed). */
  fat: number;
  soft: number;
  /** From this intensity on, a ramp over 0.2 towards `bone` HU. */
  boneFrom: number;
  bone: number;
  invert: boolean;
}

/** The fixed curve `scorerecon eval --ct-from-mri` uses: the middle of the training family. */
export const PSEUDO_CT: AttenuationCurve = {
  air: 0.1,
  fat: -100,
  soft: 50,
  boneFrom: 1,
  bone: 650,
  invert: false,
};

function randomCurve(rng: Rng): AttenuationCurve {
  return {
    air: 0.05 + 0.1 * rng.uniform(),
    fat: -150 + 100 * rng.uniform(),
    soft: 20 + 60 * rng.uniform(),
    boneFrom: 0.85 + 0.3 * rng.uniform(),
    bone: 300 + 700 * rng.uniform(),
    invert: rng.uniform() < 0.3,
  };
}

/**
 * MRI anatomy as attenuation, in place, from normalised intensity to (HU + 1000) / 2000: below
 * the air threshold -1000 HU (rising to a tenth of the way to fat); above it a monotone ramp from
 * fat to soft tissue (or the reverse) and, at the brightest values, towards bone.
 */
export function toAttenuation(x: Float32Array, k: AttenuationCurve): void {
  for (let i = 0; i < x.length; i++) {
    const m = x[i];
    let hu: number;
    if (m < k.air) hu = -1000 + (Math.max(0, m) / k.air) * (k.fat + 1000) * 0.1;
    else {
      const t = Math.min(1, (m - k.air) / (1 - k.air));
      hu = k.invert ? k.soft + (k.fat - k.soft) * t : k.fat + (k.soft - k.fat) * t;
      if (m > k.boneFrom) hu += (k.bone - k.soft) * Math.min(1, (m - k.boneFrom) / 0.2);
    }
    x[i] = (hu + 1000) / 2000;
  }
}

export interface BatchSource {
  modality: "mri" | "ct";
  slices: readonly TrainingSlice[];
  phantom?: PhantomKind;
  augment: readonly Augmentation[];
}

/** One batch [B, S, S, 1], flat: half phantoms when both are given, every sample augmented. */
export function makeBatch(src: BatchSource, s: number, b: number, rng: Rng): Float32Array {
  const aug = new Set(src.augment);
  const out = new Float32Array(b * s * s);
  const crop = new Float32Array(s * s);
  for (let k = 0; k < b; k++) {
    let slice: TrainingSlice;
    if (src.phantom && (src.slices.length === 0 || rng.uniform() < 0.5)) {
      // Phantoms are drawn at the size reconstructions run at and cropped like real slices, so
      // the prior sees anatomy at its real scale.
      const p = generatePhantom(src.phantom, PHANTOM_SIZE, Math.floor(rng.uniform() * 2 ** 31));
      const n: Normalisation = p.units === "HU" ? { kind: "hu" } : { kind: "percentile", percentile: 99.5 };
      slice = { rows: PHANTOM_SIZE, cols: PHANTOM_SIZE, data: normalise(p.data, n), hu: n.kind === "hu" };
    } else slice = src.slices[rng.int(src.slices.length)];
    drawCrop(slice, s, aug, rng, crop);
    blurCrop(crop, s, aug, rng);
    if (src.modality === "ct" && !slice.hu) toAttenuation(crop, randomCurve(rng));
    else if (src.modality === "mri") intensityMri(crop, aug, rng);
    out.set(crop, k * s * s);
  }
  return out;
}

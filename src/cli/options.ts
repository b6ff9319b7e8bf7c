/** Flag parsing shared by the commands: every bad value becomes a one-line UserError naming the flag. */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { MASK_KINDS, type MaskKind } from "../../operators/masks.js";
import { keepSlices, type Volume } from "../image/volume.js";
import type { MethodRequest } from "../recon/methods.js";
import { UserError } from "../errors.js";
import {
  ACQUISITION_DEFAULTS,
  ACQUISITION_RANGES as R,
  defaultDetectors,
  type Acquisition,
  type CtNoise,
  type Modality,
} from "../recon/acquisition.js";

/**
 * The side of an image the CLI makes (phantoms, eval's padding) and, with the count, at most
 * 2^28 voxels (1 GiB of float32) in one volume.
 */
export const IMAGE_SIDE = { min: 8, max: 4096 } as const;
const MAX_VOXELS = 2 ** 28;

/** Checks that `slices` images of `side` x `side` fit in one volume (IMAGE_SIDE). */
export function checkVoxels(flag: string, side: number, slices: number): void {
  if (side * side * slices > MAX_VOXELS)
    throw new UserError(
      `${flag}: ${slices} slice(s) of ${side}x${side} is ${side * side * slices} voxels, more than ${MAX_VOXELS} in one volume`,
      "bad_flag",
      flag,
    );
}

export function parseNumber(
  flag: string,
  value: string | undefined,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number {
  const v = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isFinite(v))
    throw new UserError(`${flag} must be a number, got '${value}'`, "bad_flag", flag);
  if (opts.integer && !Number.isInteger(v))
    throw new UserError(`${flag} must be an integer, got '${value}'`, "bad_flag", flag);
  if (opts.min !== undefined && v < opts.min)
    throw new UserError(`${flag} must be >= ${opts.min}, got '${value}'`, "bad_flag", flag);
  if (opts.max !== undefined && v > opts.max)
    throw new UserError(`${flag} must be <= ${opts.max}, got '${value}'`, "bad_flag", flag);
  return v;
}

/** An output that would overwrite an input is refused (before anything is read or written). */
export function checkNotInput(outputs: string[], input: string): void {
  for (const out of outputs)
    if (resolve(out) === resolve(input))
      throw new UserError(`--out ${out} is the input file: write the output elsewhere`, "bad_flag", "--out");
}

/** `parseNumber` of an integer in `range`. */
export const parseInteger = (flag: string, value: string | undefined, range: { min: number; max: number }) =>
  parseNumber(flag, value, { ...range, integer: true });

/**
 * Checks, before any work is done, that `dir` can be a folder to write in: it is a writable
 * folder, or, unless it must exist, the nearest part of its path that exists is one (where it
 * will be created).
 */
export function checkFolder(flag: string, dir: string, mustExist = false): void {
  const fail = (why: string): never => {
    throw new UserError(`${flag} ${dir}: ${why}`, "bad_flag", flag);
  };
  const target = resolve(dir);
  for (let p = target; ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && !mustExist && dirname(p) !== p) continue;
      if (code === "ENOENT") return fail("no such folder");
      if (code === "ENOTDIR") return fail("a part of the path is a file, not a folder");
      if (code === "EACCES") return fail("permission denied");
      throw e;
    }
    if (!isDir)
      fail(
        p === target ? "not a folder (a file of that name is in the way)" : `${p} is a file, not a folder`,
      );
    try {
      accessSync(p, constants.W_OK | constants.X_OK);
    } catch {
      fail(p === target ? "not writable" : `cannot be created in ${p} (not writable)`);
    }
    return;
  }
}

export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value))
    throw new UserError(`${flag} must be one of ${choices.join(", ")}, got '${value}'`, "bad_flag", flag);
  return value as T;
}

export function parseModality(value: string): Modality {
  return parseChoice("--modality", value, ["mri", "ct"] as const);
}

/** The operator flags shared by `simulate` and `reconstruct`. */
export interface OperatorFlags {
  accel: string;
  centerFraction: string;
  mask: string;
  maskFile?: string;
  views: string;
  detectors?: string;
  noise?: string;
  seed: string;
}

export const OPERATOR_FLAG_HELP = {
  accel: ["--accel <R>", "MRI acceleration factor", String(ACQUISITION_DEFAULTS.acceleration)],
  centerFraction: [
    "--center-fraction <F>",
    "MRI fully sampled centre fraction (fastMRI)",
    String(ACQUISITION_DEFAULTS.centerFraction),
  ],
  mask: ["--mask <kind>", `MRI mask: ${MASK_KINDS.join("|")}`, ACQUISITION_DEFAULTS.mask],
  maskFile: [
    "--mask-file <file>",
    "MRI mask from a file (.nii[.gz] or .npy; image-sized or one line of columns)",
  ],
  views: ["--views <V>", "CT views over [0, pi)", String(ACQUISITION_DEFAULTS.views)],
  detectors: ["--detectors <D>", "CT detector count (default ceil(sqrt(2) N))"],
  noise: [
    "--noise <spec>",
    "measurement noise: MRI 'gaussian:SIGMA' (k-space, per re/im); CT 'gaussian:SIGMA' or 'poisson:I0'",
  ],
  seed: ["--seed <S>", "seed of the mask and the noise", "0"],
} as const;

export function acquisitionFromFlags(
  modality: Modality,
  rows: number,
  cols: number,
  f: OperatorFlags,
): Acquisition {
  const seed = parseInteger("--seed", f.seed, R.seed);
  const noise = parseNoise(modality, f.noise);
  if (modality === "mri") {
    return {
      modality,
      rows,
      cols,
      mask: f.maskFile
        ? { file: f.maskFile }
        : {
            kind: parseChoice("--mask", f.mask, MASK_KINDS) as MaskKind,
            acceleration: parseNumber("--accel", f.accel, R.acceleration),
            centerFraction: fraction(f.centerFraction),
            seed,
          },
      noiseSigma: noise.kind === "gaussian" ? noise.sigma : 0,
    };
  }
  if (rows !== cols) throw new UserError(`CT needs a square image, got ${rows}x${cols}`, "bad_input", "--in");
  return {
    modality,
    size: rows,
    views: parseInteger("--views", f.views, R.views),
    detectors: f.detectors ? parseInteger("--detectors", f.detectors, R.detectors) : defaultDetectors(rows),
    noise,
  };
}

function fraction(value: string): number {
  const v = parseNumber("--center-fraction", value, { min: 0 });
  if (v > 1)
    throw new UserError(
      `--center-fraction must be in [0, 1], got '${value}'`,
      "bad_flag",
      "--center-fraction",
    );
  return v;
}

export function parseNoise(modality: Modality, spec: string | undefined): CtNoise {
  if (!spec || spec === "none") return { kind: "none" };
  const [kind, value, ...extra] = spec.split(":");
  if (kind === "gaussian" && !extra.length)
    return { kind, sigma: parseNumber("--noise gaussian:SIGMA", value, R.noiseSigma) };
  if (kind === "poisson" && modality === "ct" && !extra.length)
    return { kind, I0: parseNumber("--noise poisson:I0", value, R.I0) };
  throw new UserError(
    `--noise must be ${modality === "ct" ? "'gaussian:SIGMA' or 'poisson:I0'" : "'gaussian:SIGMA'"}, got '${spec}'`,
    "bad_flag",
    "--noise",
  );
}

/**
 * The zero-based slice indices that `ranges` names ("a:b", "a:b,c:d" or single slices "7,9";
 * end exclusive, as Python slices); undefined names all `count`.
 */
export function sliceIndices(ranges: string | undefined, count: number, file: string): number[] {
  if (!ranges) return Array.from({ length: count }, (_, k) => k);
  const keep: number[] = [];
  for (const part of ranges.split(",")) {
    const m = /^(\d+)(?::(\d+))?$/.exec(part.trim());
    if (!m)
      throw new UserError(
        `--slices must look like 20:80, 20:80,100:160 or 7,9, got '${ranges}'`,
        "bad_flag",
        "--slices",
      );
    const [a, b] = [Number(m[1]), m[2] === undefined ? Number(m[1]) + 1 : Number(m[2])];
    if (a >= b || b > count)
      throw new UserError(`--slices ${part} is outside ${file}'s ${count} slices`, "bad_flag", "--slices");
    for (let k = a; k < b; k++) keep.push(k);
  }
  return keep;
}

/** Keeps the slices in `ranges` (as `sliceIndices`) of a volume; undefined keeps all. */
export function selectSlices(v: Volume, ranges: string | undefined, file: string): Volume {
  if (!ranges) return v;
  return keepSlices(v, sliceIndices(ranges, v.slices, file));
}

export const volumeIndex = (v: string | undefined) =>
  v === undefined ? undefined : parseNumber("--volume", v, { min: 0, integer: true });

/** --model applies to every score-based method that does not name its own. */
export function withModel(requests: MethodRequest[], model: string | undefined): MethodRequest[] {
  if (!model) return requests;
  return requests.map((r) =>
    "model" in r.params && !r.params.model ? { ...r, params: { ...r.params, model } } : r,
  );
}

/**
 * The modality to reconstruct as: --modality, or what the input says. A --modality that
 * contradicts what the input says (DICOM Modality, the modality a NIfTI records) is refused.
 */
export function modalityFor(flag: string | undefined, v: Volume) {
  if (flag)
    return checkModality(
      parseModality(flag),
      v.modality === "CT" ? "ct" : v.modality === "MR" ? "mri" : undefined,
      "the input",
    );
  if (v.modality === "MR") return "mri" as const;
  if (v.modality === "CT") return "ct" as const;
  throw new UserError(
    "this input does not record its modality: give --modality mri|ct",
    "bad_flag",
    "--modality",
  );
}

/** Refuses a --modality that contradicts the modality `source` says (when it says one). */
export function checkModality(flag: Modality, says: Modality | undefined, source: string): Modality {
  if (says && says !== flag)
    throw new UserError(
      `--modality ${flag} contradicts ${source}, which says ${says === "ct" ? "CT" : "MR"}: leave --modality out or give --modality ${says}`,
      "bad_flag",
      "--modality",
    );
  return flag;
}

/** Adds the operator flags (--accel, --views, --noise, ...) to a command. */
export function addOperatorFlags(cmd: Command): Command {
  for (const [, spec] of Object.entries(OPERATOR_FLAG_HELP)) {
    const [flags, description, dflt] = spec as readonly string[];
    cmd.addOption(new Option(flags, description).default(dflt));
  }
  return cmd;
}

/**
 * Measurement files: MEAS.npy or BART's MEAS.cfl/.hdr (MRI k-space complex64 [rows, cols] or [slices, rows, cols];
 * CT sinogram float32 [views, detectors] or [slices, views, detectors]), with MEAS.json (the
 * acquisition) and, for MRI, MEAS.mask.npy beside it.
 */
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "../errors.js";
import { makeVolume, type Volume } from "../image/volume.js";
import { readNpyArray } from "../io/index.js";
import { checkAcquisition, type Acquisition } from "../recon/acquisition.js";
import {
  acquisitionFromFlags,
  checkModality,
  IMAGE_SIDE,
  parseModality,
  parseNumber,
  type OperatorFlags,
} from "./options.js";
import { readMask } from "./mask-file.js";

export function measurementPaths(out: string) {
  const ext = /\.(npy|cfl)$/i.exec(out)?.[0] ?? ".npy";
  const base = out.toLowerCase().endsWith(ext.toLowerCase()) ? out.slice(0, -ext.length) : out;
  return { data: base + ext, mask: `${base}.mask.npy`, sidecar: `${base}.json` };
}

export interface Measurements {
  acquisition: Acquisition;
  data: Float32Array[];
  like: Volume;
  mask?: Uint8Array;
  /** Without an acquisition file (MEAS.json): how the array was taken, in one line. */
  interpretation?: string;
}

interface Sidecar {
  acquisition: Acquisition;
  units?: Volume["units"];
  spacing?: Volume["spacing"];
  modality?: Volume["modality"];
}

export async function readMeasurements(
  path: string,
  flags: OperatorFlags & { modality?: string; size?: string },
): Promise<Measurements> {
  if (!/\.(npy|cfl)$/i.test(path) && existsSync(path))
    throw new UserError(
      `${path} is not a measurement file: give MEAS.npy or MEAS.cfl (an image to reconstruct from goes to --in)`,
      "bad_measurements",
      "--measurements",
    );
  const paths = measurementPaths(path);
  const arr = await readNpyArray(paths.data);
  const sidecar: Sidecar | undefined = existsSync(paths.sidecar) ? parseSidecar(paths.sidecar) : undefined;
  const said = sidecar?.acquisition.modality;
  const modality = flags.modality ? checkModality(parseModality(flags.modality), said, paths.sidecar) : said;
  if (!modality)
    throw new UserError(
      `${paths.data} has no ${paths.sidecar} beside it: give --modality mri|ct`,
      "bad_flag",
      "--modality",
    );
  if (arr.shape.length < 2 || arr.shape.length > 3)
    throw new UserError(
      `${paths.data} must be 2-D or 3-D (slices first), got shape ${arr.shape.join("x")}`,
      "bad_measurements",
      "--measurements",
    );
  const slices = arr.shape.length === 3 ? arr.shape[0] : 1;
  const [a, b] = arr.shape.slice(-2);
  const perSlice = a * b * (arr.complex ? 2 : 1);
  const data = Array.from({ length: slices }, (_, k) => arr.data.slice(k * perSlice, (k + 1) * perSlice));
  if (modality === "mri") {
    if (!arr.complex)
      throw new UserError(
        `${paths.data} holds real values, but MRI k-space must be complex (complex64)`,
        "bad_measurements",
        "--measurements",
      );
    const acq = sidecar?.acquisition ?? acquisitionFromFlags("mri", a, b, flags);
    if (acq.modality !== "mri" || acq.rows !== a || acq.cols !== b)
      throw new UserError(
        `${paths.data} is ${a}x${b} but ${paths.sidecar} describes another acquisition`,
        "bad_measurements",
        "--measurements",
      );
    let mask: Uint8Array;
    let source = flags.maskFile ?? paths.mask;
    if (flags.maskFile) mask = await readMask(flags.maskFile, a, b);
    else if (existsSync(paths.mask)) mask = await readMask(paths.mask, a, b);
    else {
      // As BART's `pattern`: the sampled positions are the non-zero k-space samples.
      mask = new Uint8Array(a * b);
      for (const y of data)
        for (let i = 0; i < a * b; i++) if (y[2 * i] !== 0 || y[2 * i + 1] !== 0) mask[i] = 1;
      source = `the non-zero samples of ${paths.data}`;
    }
    const like = makeVolume(slices, a, b, undefined, {
      modality: "MR",
      spacing: sidecar?.spacing,
      units: sidecar?.units,
    });
    const interpretation = sidecar
      ? undefined
      : `${paths.data} has no ${paths.sidecar}: its complex ${arr.shape.join("x")} array is read as ${slices} slice(s) of single-coil ${a}x${b} Cartesian k-space (slices first; multi-coil k-space must be coil-combined first), mask from ${source}`;
    return {
      acquisition: { ...acq, mask: { file: source } },
      data,
      like,
      mask,
      ...(interpretation ? { interpretation } : {}),
    };
  }
  if (arr.complex)
    throw new UserError(
      `${paths.data} holds complex values, but a CT sinogram is real (float32)`,
      "bad_measurements",
      "--measurements",
    );
  const size = flags.size
    ? parseNumber("--size", flags.size, { min: 1, max: IMAGE_SIDE.max, integer: true })
    : Math.floor(b / Math.SQRT2);
  const acq: Acquisition = sidecar?.acquisition ?? {
    modality: "ct",
    size,
    views: a,
    detectors: b,
    noise: { kind: "none" },
  };
  if (acq.modality !== "ct" || acq.views !== a || acq.detectors !== b)
    throw new UserError(
      `${paths.data} is ${a} views x ${b} detectors but ${paths.sidecar} describes another acquisition`,
      "bad_measurements",
      "--measurements",
    );
  const like = makeVolume(slices, acq.size, acq.size, undefined, {
    modality: "CT",
    spacing: sidecar?.spacing,
    units: sidecar?.units,
  });
  const interpretation = sidecar
    ? undefined
    : `${paths.data} has no ${paths.sidecar}: its ${arr.shape.join("x")} array is read as ${slices} sinogram(s) of ${a} views x ${b} detectors over [0, pi) for ${acq.size}x${acq.size} images (slices first)`;
  return { acquisition: acq, data, like, ...(interpretation ? { interpretation } : {}) };
}

function parseSidecar(path: string): Sidecar {
  try {
    const s = JSON.parse(readFileSync(path, "utf8")) as Sidecar;
    if (!s.acquisition || (s.acquisition.modality !== "mri" && s.acquisition.modality !== "ct"))
      throw new Error("no acquisition");
    checkAcquisition(s.acquisition, path, "--measurements");
    return s;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(
      `${path} is not a scorerecon measurement description (${(e as Error).message})`,
      "bad_measurements",
      "--measurements",
    );
  }
}

/** Reading and writing volumes and arrays, dispatched by file extension. */
import { statSync } from "node:fs";
import { UserError } from "../errors.js";
import { makeVolume, type Volume } from "../image/volume.js";
import { readNifti, writeNifti } from "./nifti.js";
import { readNpy, writeNpy, type NpyArray, type NpyWriteDtype } from "./npy.js";
import { readPng, writePng } from "./png.js";
import { readCfl, writeCfl } from "./cfl.js";
import { readDicomSeries } from "./dicom.js";
import { looksLikeDicom } from "./dicom-files.js";
import type { DecompressionBudget } from "./decompression.js";

export { writePng, encodePng, type DisplayWindow } from "./png.js";
export { writeFileAtomic, writeJsonAtomic } from "./atomic.js";
export type { NpyArray } from "./npy.js";
export { listDicomSeries } from "./dicom.js";
export { DecompressionBudget } from "./decompression.js";

type Format = "nifti" | "npy" | "png" | "cfl";

function formatOf(path: string): Format {
  const p = path.toLowerCase();
  if (p.endsWith(".nii") || p.endsWith(".nii.gz")) return "nifti";
  if (p.endsWith(".npy")) return "npy";
  if (p.endsWith(".png")) return "png";
  if (p.endsWith(".cfl") || p.endsWith(".hdr")) return "cfl";
  throw new UserError(
    `${path}: unknown file type (expected .nii, .nii.gz, .npy, .cfl or .png)`,
    "bad_format",
    path,
  );
}

/** A folder (of DICOM files), a .dcm file, or any file with the DICOM magic. */
export function isDicomPath(path: string): boolean {
  try {
    if (statSync(path).isDirectory()) return true;
  } catch {
    return false;
  }
  return path.toLowerCase().endsWith(".dcm") || looksLikeDicom(path);
}

function checkReadable(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`${path}: no such file`, "not_found", path);
  }
  if (st.isDirectory()) throw new UserError(`${path} is a folder, expected an image file`, "bad_file", path);
}

export async function readVolume(
  path: string,
  options: { volumeIndex?: number; seriesUid?: string; budget?: DecompressionBudget } = {},
): Promise<Volume> {
  if (isDicomPath(path))
    return (await readDicomSeries(path, { seriesUid: options.seriesUid, budget: options.budget })).volume;
  const format = formatOf(path);
  if (format === "cfl") return arrayToVolume(readCfl(path), path);
  checkReadable(path);
  if (format === "nifti") return readNifti(path, options);
  if (format === "png") {
    const im = readPng(path);
    return makeVolume(1, im.rows, im.cols, im.data);
  }
  return arrayToVolume(readNpy(path), path);
}

/**
 * A raw array as an image volume. Complex images (BART's, say) become their magnitude, as every
 * reconstruction here works on magnitude images.
 */
function arrayToVolume(arr: NpyArray, path: string): Volume {
  const data = arr.complex ? magnitudeOf(arr.data) : arr.data;
  if (arr.shape.length === 2) return makeVolume(1, arr.shape[0], arr.shape[1], data);
  if (arr.shape.length === 3) return makeVolume(arr.shape[0], arr.shape[1], arr.shape[2], data);
  throw new UserError(
    `${path} has shape ${arr.shape.join("x")}; an image is 2-D [rows, cols] or 3-D [slices, rows, cols]`,
    "bad_dims",
    path,
  );
}

function magnitudeOf(z: Float32Array): Float32Array {
  const out = new Float32Array(z.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Math.hypot(z[2 * i], z[2 * i + 1]);
  return out;
}

export async function writeVolume(path: string, v: Volume): Promise<void> {
  const format = formatOf(path);
  if (format === "nifti") return writeNifti(path, v);
  const shape = v.slices > 1 ? [v.slices, v.rows, v.cols] : [v.rows, v.cols];
  if (format === "npy") return writeNpy(path, shape, v.data, "float32");
  if (format === "cfl") return writeCfl(path, shape, v.data, false);
  if (v.slices > 1)
    throw new UserError(
      `${path}: a PNG holds one slice; write ${v.slices} slices as .nii.gz or .npy`,
      "bad_format",
      path,
    );
  return writePng(path, { rows: v.rows, cols: v.cols, data: v.data });
}

/** A raw array (k-space, sinogram, mask) from .npy or BART .cfl. */
export async function readNpyArray(path: string): Promise<NpyArray> {
  const format = formatOf(path);
  if (format === "cfl") return readCfl(path);
  if (format !== "npy") throw new UserError(`${path}: expected a .npy or .cfl array`, "bad_format", path);
  checkReadable(path);
  return readNpy(path);
}

export async function writeNpyArray(
  path: string,
  a: { shape: readonly number[]; data: ArrayLike<number>; complex?: boolean; dtype?: "uint8" },
): Promise<void> {
  if (formatOf(path) === "cfl") return writeCfl(path, a.shape, a.data, !!a.complex);
  const dtype: NpyWriteDtype = a.dtype ?? (a.complex ? "complex64" : "float32");
  await writeNpy(path, a.shape, a.data, dtype);
}

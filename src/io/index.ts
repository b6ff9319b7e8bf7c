/** Reading and writing volumes and arrays, dispatched by file extension. */
import { statSync } from "node:fs";
import { UserError } from "../errors.js";
import { makeVolume, type Volume } from "../image/volume.js";
import { readNifti, writeNifti } from "./nifti.js";
import { readNpy, writeNpy, type NpyArray, type NpyWriteDtype } from "./npy.js";
import { readPng, writePng } from "./png.js";

export { writePng, encodePng, type DisplayWindow } from "./png.js";
export { writeFileAtomic } from "./atomic.js";

type Format = "nifti" | "npy" | "png";

function formatOf(path: string): Format {
  const p = path.toLowerCase();
  if (p.endsWith(".nii") || p.endsWith(".nii.gz")) return "nifti";
  if (p.endsWith(".npy")) return "npy";
  if (p.endsWith(".png")) return "png";
  throw new UserError(
    `${path}: unknown file type (expected .nii, .nii.gz, .npy or .png)`,
    "bad_format",
    path,
  );
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

export async function readVolume(path: string, options: { volumeIndex?: number } = {}): Promise<Volume> {
  const format = formatOf(path);
  checkReadable(path);
  if (format === "nifti") return readNifti(path, options);
  if (format === "png") {
    const im = readPng(path);
    return makeVolume(1, im.rows, im.cols, im.data);
  }
  const arr = readNpy(path);
  if (arr.complex)
    throw new UserError(`${path} holds complex values; an image must be real`, "bad_file", path);
  if (arr.shape.length === 2) return makeVolume(1, arr.shape[0], arr.shape[1], arr.data);
  if (arr.shape.length === 3) return makeVolume(arr.shape[0], arr.shape[1], arr.shape[2], arr.data);
  throw new UserError(
    `${path} has shape ${arr.shape.join("x")}; an image is 2-D [rows, cols] or 3-D [slices, rows, cols]`,
    "bad_dims",
    path,
  );
}

export async function writeVolume(path: string, v: Volume): Promise<void> {
  const format = formatOf(path);
  if (format === "nifti") return writeNifti(path, v);
  if (format === "npy")
    return writeNpy(path, v.slices > 1 ? [v.slices, v.rows, v.cols] : [v.rows, v.cols], v.data, "float32");
  if (v.slices > 1)
    throw new UserError(
      `${path}: a PNG holds one slice; write ${v.slices} slices as .nii.gz or .npy`,
      "bad_format",
      path,
    );
  return writePng(path, { rows: v.rows, cols: v.cols, data: v.data });
}

/** A raw array (k-space, sinogram, mask). */
export async function readNpyArray(path: string): Promise<NpyArray> {
  if (formatOf(path) !== "npy") throw new UserError(`${path}: expected a .npy file`, "bad_format", path);
  checkReadable(path);
  return readNpy(path);
}

export async function writeNpyArray(
  path: string,
  a: { shape: readonly number[]; data: ArrayLike<number>; complex?: boolean; dtype?: "uint8" },
): Promise<void> {
  const dtype: NpyWriteDtype = a.dtype ?? (a.complex ? "complex64" : "float32");
  await writeNpy(path, a.shape, a.data, dtype);
}

/** MRI sampling masks from files (--mask-file, MEAS.mask.npy): read and fitted to the image. */
import { expandLineMask } from "../../operators/masks.js";
import { UserError } from "../errors.js";
import type { Volume } from "../image/volume.js";
import { readNpyArray, readVolume } from "../io/index.js";
import type { Acquisition } from "../recon/acquisition.js";

/** A mask file (.nii[.gz] or .npy): image-sized, or one line of `cols` entries for all rows. */
export async function readMask(file: string, rows: number, cols: number): Promise<Uint8Array> {
  const { data, shape } = file.toLowerCase().endsWith(".npy")
    ? await readNpyArray(file)
    : await readVolume(file).then((v) => ({
        data: v.data,
        shape: [v.slices, v.rows, v.cols].filter((d, i) => i > 0 || d > 1),
      }));
  const binary = Uint8Array.from(data, (v) => (v !== 0 ? 1 : 0));
  if (binary.length === rows * cols) return binary;
  if (binary.length === cols) return expandLineMask(binary, rows);
  throw new UserError(
    `mask ${file} has shape ${shape.join("x")}, but the image is ${rows}x${cols} (need ${rows}x${cols} or one line of ${cols})`,
    "bad_mask",
    "--mask-file",
  );
}

/** The mask file an MRI acquisition names, read for the image `v`; none for any other acquisition. */
export async function maskFor(acq: Acquisition, v: Volume): Promise<Uint8Array | undefined> {
  if (acq.modality !== "mri" || !("file" in acq.mask)) return undefined;
  return readMask(acq.mask.file, v.rows, v.cols);
}

/**
 * Images and volumes. Voxels are Float32Array, slice-major, each slice row-major [rows, cols]
 * (index = (slice * rows + row) * cols + col). Spacing is in millimetres.
 */
export interface Image2D {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** What the voxel values mean: Hounsfield units (CT), or arbitrary intensity. */
export type Units = "HU" | "arbitrary";

export interface Volume {
  readonly slices: number;
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
  /** [row spacing, column spacing, slice spacing] in mm. */
  readonly spacing: readonly [number, number, number];
  /** DICOM-style modality code: "MR", "CT" or "OT" (other). */
  readonly modality: "MR" | "CT" | "OT";
  readonly units: Units;
  /**
   * NIfTI-style affine, 16 numbers row-major: voxel (col, row, slice) -> RAS+ millimetres. Kept
   * from the input so outputs overlay it in any viewer; absent for generated images.
   */
  readonly affine?: readonly number[];
  /** The DICOM study a volume was read from, so derived series can be written back into it. */
  readonly dicom?: DicomSource;
}

/** What a derived DICOM series keeps from its source (PS3.3 C.7.1-C.7.6). */
export interface DicomSource {
  /** Patient and study attributes by DICOM keyword (PatientName, StudyInstanceUID, ...). */
  patientStudy: Record<string, string>;
  frameOfReferenceUid?: string;
  modality: string;
  patientPosition?: string;
  /** Per slice: the source instance and its position. */
  slices: { sopClassUid: string; sopInstanceUid: string; position?: number[] }[];
  orientation?: number[];
}

export function makeVolume(
  slices: number,
  rows: number,
  cols: number,
  data?: Float32Array,
  init: Partial<Pick<Volume, "spacing" | "modality" | "units" | "affine" | "dicom">> = {},
): Volume {
  const n = slices * rows * cols;
  if (data && data.length !== n)
    throw new RangeError(`volume data has ${data.length} values, expected ${slices}x${rows}x${cols}`);
  return {
    slices,
    rows,
    cols,
    data: data ?? new Float32Array(n),
    spacing: init.spacing ?? [1, 1, 1],
    modality: init.modality ?? "OT",
    units: init.units ?? "arbitrary",
    ...(init.affine ? { affine: init.affine } : {}),
    ...(init.dicom ? { dicom: init.dicom } : {}),
  };
}

/** A view (no copy) of one slice. */
export function sliceOf(v: Volume, k: number): Image2D {
  const n = v.rows * v.cols;
  return { rows: v.rows, cols: v.cols, data: v.data.subarray(k * n, (k + 1) * n) };
}

/**
 * Some of a volume's slices (indices in order), with their geometry: the DICOM source keeps the
 * kept slices' instances and positions, and the affine's origin moves to the first kept slice
 * (exact for one contiguous range), so anything derived from them lies where they lie.
 */
export function keepSlices(v: Volume, keep: readonly number[]): Volume {
  if (keep.length === v.slices && keep.every((k, i) => k === i)) return v;
  const n = v.rows * v.cols;
  const data = new Float32Array(keep.length * n);
  keep.forEach((k, i) => data.set(v.data.subarray(k * n, (k + 1) * n), i * n));
  const dicom = v.dicom && { ...v.dicom, slices: keep.map((k) => v.dicom!.slices[k]) };
  const a = v.affine?.map((x, i) => (i === 3 || i === 7 || i === 11 ? x + keep[0] * v.affine![i - 1] : x));
  return { ...v, slices: keep.length, data, ...(dicom ? { dicom } : {}), ...(a ? { affine: a } : {}) };
}

/** Stack equally sized slices into a volume. */
export function stackSlices(images: readonly Image2D[], init: Parameters<typeof makeVolume>[4] = {}): Volume {
  if (images.length === 0) throw new RangeError("no slices to stack");
  const { rows, cols } = images[0];
  const out = makeVolume(images.length, rows, cols, undefined, init);
  images.forEach((im, k) => {
    if (im.rows !== rows || im.cols !== cols)
      throw new RangeError(`slice ${k} is ${im.rows}x${im.cols}, expected ${rows}x${cols}`);
    out.data.set(im.data, k * rows * cols);
  });
  return out;
}

/**
 * The volume's slices centred in rows x cols: zero-padded where larger, cropped where smaller
 * (fastMRI's centre crop). Spacing and modality are kept; the affine and DICOM source are not.
 */
export function padOrCrop(v: Volume, rows: number, cols: number): Volume {
  if (v.rows === rows && v.cols === cols) return v;
  const out = makeVolume(v.slices, rows, cols, undefined, {
    spacing: v.spacing,
    modality: v.modality,
    units: v.units,
  });
  const r0 = Math.floor((rows - v.rows) / 2);
  const c0 = Math.floor((cols - v.cols) / 2);
  for (let k = 0; k < v.slices; k++)
    for (let r = Math.max(0, r0); r < Math.min(rows, r0 + v.rows); r++)
      for (let c = Math.max(0, c0); c < Math.min(cols, c0 + v.cols); c++)
        out.data[(k * rows + r) * cols + c] = v.data[(k * v.rows + r - r0) * v.cols + c - c0];
  return out;
}

/**
 * A volume's voxel-to-world affine (NIfTI convention, RAS+ mm): its own, or for a volume without one
 * (a phantom, an .npy) the one every writer gives it: row 0 at the top, spacing from the volume.
 */
export function affineOf(v: Volume): readonly number[] {
  if (v.affine) return v.affine;
  const [dy, dx, dz] = v.spacing;
  return [dx, 0, 0, 0, 0, -dy, 0, (v.rows - 1) * dy, 0, 0, dz, 0, 0, 0, 0, 1];
}

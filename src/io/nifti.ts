/**
 * NIfTI-1 and NIfTI-2 (.nii, .nii.gz) reading with nifti-reader-js, and NIfTI-1 float32 writing.
 * Axes: NIfTI's i (fastest) is our column, j our row, k our slice, so voxels are copied in file
 * order. The affine (sform when its code is set, else qform) is kept on the Volume and written
 * back, so outputs overlay their input. Without an affine we write one that puts row 0 at the top
 * (j runs downwards: srow_y = [0, -dy, 0, (rows - 1) dy]), matching how the PNGs show the image.
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import * as nifti from "nifti-reader-js";
import { UserError } from "../errors.js";
import { makeVolume, type Volume } from "../image/volume.js";
import { writeFileAtomic } from "./atomic.js";

type Header = ReturnType<typeof nifti.readHeader>;

const READERS: Record<
  number,
  { size: number; read: (v: DataView, o: number, l: boolean) => number; name: string }
> = {
  2: { size: 1, read: (v, o) => v.getUint8(o), name: "uint8" },
  4: { size: 2, read: (v, o, l) => v.getInt16(o, l), name: "int16" },
  8: { size: 4, read: (v, o, l) => v.getInt32(o, l), name: "int32" },
  16: { size: 4, read: (v, o, l) => v.getFloat32(o, l), name: "float32" },
  64: { size: 8, read: (v, o, l) => v.getFloat64(o, l), name: "float64" },
  256: { size: 1, read: (v, o) => v.getInt8(o), name: "int8" },
  512: { size: 2, read: (v, o, l) => v.getUint16(o, l), name: "uint16" },
  768: { size: 4, read: (v, o, l) => v.getUint32(o, l), name: "uint32" },
};

export function readNifti(path: string, options: { volumeIndex?: number } = {}): Volume {
  const file = readFileSync(path);
  let buf: ArrayBuffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  let header: Header;
  try {
    if (nifti.isCompressed(buf)) buf = nifti.decompress(buf) as ArrayBuffer;
    if (!nifti.isNIFTI(buf)) throw new UserError(`${path} is not a NIfTI file`, "bad_file", path);
    header = nifti.readHeader(buf);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path} is not a readable NIfTI file (${(e as Error).message})`, "bad_file", path);
  }
  const dims = header.dims;
  const cols = Math.max(1, dims[1]),
    rows = Math.max(1, dims[2] || 1),
    slices = dims[0] >= 3 ? Math.max(1, dims[3]) : 1;
  const volumes = dims[0] >= 4 ? dims.slice(4, dims[0] + 1).reduce((a, b) => a * Math.max(1, b), 1) : 1;
  const k = options.volumeIndex;
  if (volumes > 1 && k === undefined)
    throw new UserError(
      `${path} is 4-D (dim[4] = ${dims[4]} volumes); choose one with --volume K`,
      "bad_dims",
      path,
    );
  if (k !== undefined && (k < 0 || k >= volumes))
    throw new UserError(`${path} has ${volumes} volumes; --volume ${k} is out of range`, "bad_dims", path);
  const reader = READERS[header.datatypeCode];
  if (!reader)
    throw new UserError(
      `${path} has NIfTI datatype ${header.datatypeCode}, which is not supported (real scalar images only)`,
      "bad_dtype",
      path,
    );
  const n = rows * cols * slices;
  const image = nifti.readImage(header, buf);
  const start = (k ?? 0) * n * reader.size;
  if (image.byteLength < start + n * reader.size)
    throw new UserError(
      `${path} is truncated: ${rows}x${cols}x${slices} ${reader.name} voxels need ${n * reader.size} bytes`,
      "bad_file",
      path,
    );
  const view = new DataView(image, start);
  const slope = header.scl_slope && Number.isFinite(header.scl_slope) ? header.scl_slope : 1;
  const inter = header.scl_slope && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++)
    data[i] = reader.read(view, i * reader.size, header.littleEndian) * slope + inter;
  const px = header.pixDims;
  const hasAffine = header.sform_code > 0 || header.qform_code > 0;
  const modality = /modality=(MR|CT|OT)\b/.exec(header.description)?.[1] as Volume["modality"] | undefined;
  const units = /units=HU\b/.test(header.description) ? "HU" : "arbitrary";
  return makeVolume(slices, rows, cols, data, {
    modality,
    units,
    spacing: [Math.abs(px[2]) || 1, Math.abs(px[1]) || 1, Math.abs(px[3]) || 1],
    affine: hasAffine ? header.affine.flat() : undefined,
  });
}

/** The affine we write for a volume without one: row 0 at the top, spacing from the volume. */
export function defaultAffine(v: Volume): number[] {
  const [dy, dx, dz] = v.spacing;
  return [dx, 0, 0, 0, 0, -dy, 0, (v.rows - 1) * dy, 0, 0, dz, 0, 0, 0, 0, 1];
}

/** nifti1_io.c nifti_mat44_to_quatern, for an orthogonal affine. */
function quaternion(m: readonly number[]) {
  const col = (j: number) => [m[j], m[4 + j], m[8 + j]];
  const cols = [0, 1, 2].map((j) => {
    const c = col(j);
    const len = Math.hypot(...c) || 1;
    return { c: c.map((v) => v / len), len };
  });
  const r = (i: number, j: number) => cols[j].c[i];
  const det =
    r(0, 0) * (r(1, 1) * r(2, 2) - r(1, 2) * r(2, 1)) -
    r(0, 1) * (r(1, 0) * r(2, 2) - r(1, 2) * r(2, 0)) +
    r(0, 2) * (r(1, 0) * r(2, 1) - r(1, 1) * r(2, 0));
  const qfac = det > 0 ? 1 : -1;
  const R = [0, 1, 2].map((i) => [r(i, 0), r(i, 1), qfac * r(i, 2)]);
  let a = R[0][0] + R[1][1] + R[2][2] + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (R[2][1] - R[1][2])) / a;
    c = (0.25 * (R[0][2] - R[2][0])) / a;
    d = (0.25 * (R[1][0] - R[0][1])) / a;
  } else {
    const xd = 1 + R[0][0] - (R[1][1] + R[2][2]);
    const yd = 1 + R[1][1] - (R[0][0] + R[2][2]);
    const zd = 1 + R[2][2] - (R[0][0] + R[1][1]);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (R[0][1] + R[1][0])) / b;
      d = (0.25 * (R[0][2] + R[2][0])) / b;
      a = (0.25 * (R[2][1] - R[1][2])) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (R[0][1] + R[1][0])) / c;
      d = (0.25 * (R[1][2] + R[2][1])) / c;
      a = (0.25 * (R[0][2] - R[2][0])) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (R[0][2] + R[2][0])) / d;
      c = (0.25 * (R[1][2] + R[2][1])) / d;
      a = (0.25 * (R[1][0] - R[0][1])) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { b, c, d, qfac, pixdim: cols.map((x) => x.len) };
}

/** A single-file NIfTI-1 image (float32), gzipped when the path ends in .gz. */
export function encodeNifti1(v: Volume, gzip: boolean): Uint8Array {
  const affine = v.affine ?? defaultAffine(v);
  const n = v.rows * v.cols * v.slices;
  const voxOffset = 352;
  const buf = new ArrayBuffer(voxOffset + 4 * n);
  const h = new DataView(buf);
  const le = true;
  h.setInt32(0, 348, le);
  const dim = [v.slices > 1 ? 3 : 2, v.cols, v.rows, v.slices, 1, 1, 1, 1];
  dim.forEach((d, i) => h.setInt16(40 + 2 * i, d, le));
  h.setInt16(70, 16, le); // datatype float32
  h.setInt16(72, 32, le); // bitpix
  const q = quaternion(affine);
  const pixdim = [q.qfac, q.pixdim[0], q.pixdim[1], q.pixdim[2], 1, 1, 1, 1];
  pixdim.forEach((p, i) => h.setFloat32(76 + 4 * i, p, le));
  h.setFloat32(108, voxOffset, le);
  h.setFloat32(112, 1, le); // scl_slope
  h.setFloat32(116, 0, le); // scl_inter
  h.setUint8(123, 2); // xyzt_units: mm
  // descrip records what NIfTI has no field for, so a round trip keeps CT in HU as CT in HU.
  const descrip = new TextEncoder().encode(`scorerecon modality=${v.modality} units=${v.units}`.slice(0, 79));
  new Uint8Array(buf, 148, 80).set(descrip);
  h.setInt16(252, 1, le); // qform_code: scanner anatomical
  h.setInt16(254, 1, le); // sform_code
  h.setFloat32(256, q.b, le);
  h.setFloat32(260, q.c, le);
  h.setFloat32(264, q.d, le);
  h.setFloat32(268, affine[3], le);
  h.setFloat32(272, affine[7], le);
  h.setFloat32(276, affine[11], le);
  for (let i = 0; i < 12; i++) h.setFloat32(280 + 4 * i, affine[i], le);
  new Uint8Array(buf, 344, 4).set([0x6e, 0x2b, 0x31, 0]); // "n+1\0"
  new Float32Array(buf, voxOffset, n).set(v.data);
  const bytes = new Uint8Array(buf);
  return gzip ? gzipSync(bytes) : bytes;
}

export async function writeNifti(path: string, v: Volume): Promise<void> {
  await writeFileAtomic(path, encodeNifti1(v, path.toLowerCase().endsWith(".gz")));
}

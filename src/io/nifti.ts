/**
 * NIfTI-1 and NIfTI-2 (.nii, .nii.gz) reading with nifti-reader-js, and NIfTI-1 float32 writing.
 * Axes: NIfTI's i (fastest) is our column, j our row, k our slice, so voxels are copied in file
 * order. The affine (sform when its code is set, else qform, else NIfTI's method 1 from pixdim) is
 * kept on the Volume and written back, so outputs overlay their input in any viewer. A volume
 * without an affine (a phantom, an .npy) is written with one that puts row 0 at the top (j runs
 * downwards: srow_y = [0, -dy, 0, (rows - 1) dy]), matching how the PNGs show the image.
 */
import { gzipSync } from "node:zlib";
import * as nifti from "nifti-reader-js";
import { UserError } from "../errors.js";
import { affineOf as volumeAffine, makeVolume, type Volume } from "../image/volume.js";
import { writeFileAtomic } from "./atomic.js";
import { DecompressionBudget } from "./decompression.js";
import { readInputFile } from "./files.js";

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

export function readNifti(
  path: string,
  options: { volumeIndex?: number; budget?: DecompressionBudget } = {},
): Volume {
  const bad = (problem: string, code = "bad_file") => new UserError(`${path} ${problem}`, code, path);
  let file: Uint8Array = readInputFile(path);
  const budget = options.budget ?? new DecompressionBudget();
  try {
    // The gzip magic (RFC 1952 2.3.1).
    if (file[0] === 0x1f && file[1] === 0x8b) file = budget.gunzip(file, path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw bad(`is not a readable NIfTI file (gzip: ${(e as Error).message})`);
  }
  const buf = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  if (buf.byteLength < 348 || !nifti.isNIFTI(buf)) throw bad("is not a NIfTI file (no n+1 or n+2 magic)");
  let header: Header;
  try {
    header = nifti.readHeader(buf);
  } catch (e) {
    throw bad(`is not a readable NIfTI file (${(e as Error).message})`);
  }
  const nifti2 = header instanceof nifti.NIFTI2;
  const dims = header.dims.map(Number);
  const ndim = dims[0];
  if (!(ndim >= 1 && ndim <= 7)) throw bad(`has dim[0] = ${ndim}; NIfTI allows 1 to 7 dimensions`);
  // Dimensions past dim[0] are unused, whatever the file holds there (NIfTI-1 header, dim).
  const size = (i: number) => (i <= ndim ? Math.max(1, dims[i]) : 1);
  const cols = size(1),
    rows = size(2),
    slices = size(3);
  const extra = [4, 5, 6, 7].filter((i) => i <= ndim).map(size);
  const volumes = extra.reduce((a, b) => a * b, 1);
  const k = options.volumeIndex;
  if (volumes > 1 && k === undefined)
    throw bad(
      ndim === 4
        ? `is 4-D (dim[4] = ${dims[4]} volumes); choose one with --volume K`
        : `is ${ndim}-D (dim[4..${ndim}] = ${extra.join(" x ")}, ${volumes} volumes); choose one with --volume K`,
      "bad_dims",
    );
  if (k !== undefined && (!Number.isInteger(k) || k < 0 || k >= volumes))
    throw bad(`has ${volumes} volume(s); --volume ${k} is out of range`, "bad_dims");
  const reader = READERS[header.datatypeCode];
  if (!reader)
    throw bad(
      `has NIfTI datatype ${header.datatypeCode}, which is not supported (real scalar images only: uint8, int8, int16, uint16, int32, uint32, float32, float64)`,
      "bad_dtype",
    );
  const n = rows * cols * slices;
  // Read the voxels ourselves: nifti-reader-js's readImage multiplies dim[1..5] as stored, so a
  // 2-D file with dim[3] = 0 would come back empty.
  const voxOffset = Math.floor(Number(header.vox_offset));
  if (!(voxOffset >= (nifti2 ? 540 : 348)))
    throw bad(`has vox_offset ${header.vox_offset}, inside its header`);
  const start = voxOffset + (k ?? 0) * n * reader.size;
  if (buf.byteLength < start + n * reader.size)
    throw bad(
      `is truncated: ${cols}x${rows}x${slices} ${reader.name} voxels need ${n * reader.size} bytes from offset ${start}, found ${Math.max(0, buf.byteLength - start)}`,
    );
  const view = new DataView(buf, start, n * reader.size);
  // NIfTI-1 header, scl_slope: scaling applies only when the slope is non-zero.
  const scaled = header.scl_slope !== 0 && Number.isFinite(header.scl_slope);
  const slope = scaled ? header.scl_slope : 1;
  const inter = scaled && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++)
    data[i] = reader.read(view, i * reader.size, header.littleEndian) * slope + inter;
  const px = header.pixDims;
  // A voxel size of 0 is unknown (taken as 1 mm); an infinite or NaN one is not a voxel size.
  for (const i of [1, 2, 3])
    if (i <= Math.max(ndim, 3) && !Number.isFinite(px[i]))
      throw bad(`has pixdim[${i}] = ${px[i]}, not a voxel size`);
  const modality = /modality=(MR|CT|OT)\b/.exec(header.description)?.[1] as Volume["modality"] | undefined;
  const units = /units=HU\b/.test(header.description) ? "HU" : "arbitrary";
  return makeVolume(slices, rows, cols, data, {
    modality,
    units,
    spacing: [Math.abs(px[2]) || 1, Math.abs(px[1]) || 1, Math.abs(px[3]) || 1],
    affine: affineOf(header, buf, nifti2),
  });
}

/**
 * The voxel-to-world affine as NiBabel's get_best_affine chooses it: the sform when sform_code > 0,
 * else the qform when qform_code > 0, else NIfTI's "method 1" (pixdim scaling only, i right,
 * j up). nifti-reader-js prefers the qform whenever its code is the larger and ignores the qform
 * of NIfTI-2 files, so the header fields are read here.
 */
function affineOf(h: Header, buf: ArrayBuffer, nifti2: boolean): number[] {
  const px = h.pixDims;
  const step = (i: number) => (px[i] > 0 ? px[i] : 1);
  if (h.sform_code > 0) {
    const view = new DataView(buf);
    const srow = Array.from({ length: 12 }, (_, i) =>
      nifti2 ? view.getFloat64(400 + 8 * i, h.littleEndian) : view.getFloat32(280 + 4 * i, h.littleEndian),
    );
    return [...srow, 0, 0, 0, 1];
  }
  if (h.qform_code > 0) {
    // nifti1_io.c nifti_quatern_to_mat44.
    let [b, c, d] = [h.quatern_b, h.quatern_c, h.quatern_d];
    let a = 1 - (b * b + c * c + d * d);
    if (a < 1e-7) {
      const norm = 1 / Math.sqrt(b * b + c * c + d * d);
      [a, b, c, d] = [0, b * norm, c * norm, d * norm];
    } else a = Math.sqrt(a);
    const zd = px[0] < 0 ? -step(3) : step(3);
    const [xd, yd] = [step(1), step(2)];
    return [
      (a * a + b * b - c * c - d * d) * xd,
      2 * (b * c - a * d) * yd,
      2 * (b * d + a * c) * zd,
      h.qoffset_x,
      2 * (b * c + a * d) * xd,
      (a * a + c * c - b * b - d * d) * yd,
      2 * (c * d - a * b) * zd,
      h.qoffset_y,
      2 * (b * d - a * c) * xd,
      2 * (c * d + a * b) * yd,
      (a * a + d * d - c * c - b * b) * zd,
      h.qoffset_z,
      0,
      0,
      0,
      1,
    ];
  }
  return [step(1), 0, 0, 0, 0, step(2), 0, 0, 0, 0, step(3), 0, 0, 0, 0, 1];
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
  const affine = volumeAffine(v);
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
  // NIfTI-1 stores each dimension as an int16.
  const big = Math.max(v.rows, v.cols, v.slices);
  if (big > 32767)
    throw new UserError(
      `cannot write ${path}: NIfTI-1 holds at most 32767 voxels along an axis, this volume has ${big}; write .npy instead`,
      "bad_output",
      path,
    );
  await writeFileAtomic(path, encodeNifti1(v, path.toLowerCase().endsWith(".gz")));
}

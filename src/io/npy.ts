/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0; NEP 1). Reading takes any byte order, C or
 * Fortran order, and the real and complex dtypes below; arrays come back in C order as
 * Float32Array (complex interleaved). Writing produces float32 `<f4`, complex64 `<c8` or uint8
 * `|u1` in C order.
 */
import { readFileSync } from "node:fs";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";

export interface NpyArray {
  shape: number[];
  /** C order; complex values interleaved re/im. */
  data: Float32Array;
  complex: boolean;
  /** The file's dtype descr, e.g. "<f4". */
  dtype: string;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type Reader = (v: DataView, offset: number, little: boolean) => number;
const READERS: Record<string, [number, Reader]> = {
  f4: [4, (v, o, l) => v.getFloat32(o, l)],
  f8: [8, (v, o, l) => v.getFloat64(o, l)],
  i1: [1, (v, o) => v.getInt8(o)],
  u1: [1, (v, o) => v.getUint8(o)],
  b1: [1, (v, o) => v.getUint8(o)],
  i2: [2, (v, o, l) => v.getInt16(o, l)],
  u2: [2, (v, o, l) => v.getUint16(o, l)],
  i4: [4, (v, o, l) => v.getInt32(o, l)],
  u4: [4, (v, o, l) => v.getUint32(o, l)],
  i8: [8, (v, o, l) => Number(v.getBigInt64(o, l))],
  u8: [8, (v, o, l) => Number(v.getBigUint64(o, l))],
  c8: [4, (v, o, l) => v.getFloat32(o, l)],
  c16: [8, (v, o, l) => v.getFloat64(o, l)],
};

export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m))
    throw new UserError(`${name} is not a NumPy .npy file (bad magic)`, "bad_file", name);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.length)
    throw new UserError(`${name} is truncated (header)`, "bad_file", name);
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(start, start + headerLen),
  );
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined)
    throw new UserError(`${name} has an unreadable .npy header`, "bad_file", name);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const order = descr[0];
  const kind = descr.slice(1);
  const reader = READERS[kind];
  if (!reader || !"<>|=".includes(order))
    throw new UserError(
      `${name} has dtype '${descr}', which is not supported (real or complex numbers only)`,
      "bad_dtype",
      name,
    );
  const little = order !== ">";
  const complex = kind.startsWith("c");
  const count = shape.reduce((a, b) => a * b, 1);
  const values = complex ? 2 * count : count;
  const [size, read] = reader;
  const offset = start + headerLen;
  if (offset + values * size > bytes.length)
    throw new UserError(
      `${name} is truncated: shape ${shape.join("x")} of ${descr} needs ${values * size} bytes of data, found ${bytes.length - offset}`,
      "bad_file",
      name,
    );
  const data = new Float32Array(values);
  for (let i = 0; i < values; i++) data[i] = read(view, offset + i * size, little);
  return {
    shape,
    data: fortran && shape.length > 1 ? fortranToC(data, shape, complex ? 2 : 1) : data,
    complex,
    dtype: descr,
  };
}

function fortranToC(data: Float32Array, shape: number[], ch: number): Float32Array {
  const out = new Float32Array(data.length);
  const n = shape.length;
  const count = data.length / ch;
  const idx = new Array<number>(n).fill(0);
  for (let c = 0; c < count; c++) {
    // c walks C order; compute the Fortran offset of the same index.
    let f = 0;
    for (let k = n - 1; k >= 0; k--) f = f * shape[k] + idx[k];
    for (let q = 0; q < ch; q++) out[c * ch + q] = data[f * ch + q];
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

export function readNpy(path: string): NpyArray {
  return parseNpy(readFileSync(path), path);
}

export type NpyWriteDtype = "float32" | "complex64" | "uint8";

export function encodeNpy(
  shape: readonly number[],
  data: ArrayLike<number>,
  dtype: NpyWriteDtype,
): Uint8Array {
  const descr = dtype === "float32" ? "<f4" : dtype === "complex64" ? "<c8" : "|u1";
  const count = shape.reduce((a, b) => a * b, 1) * (dtype === "complex64" ? 2 : 1);
  if (data.length !== count)
    throw new RangeError(`npy: ${data.length} values do not fill shape ${shape.join("x")}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so that magic + length + header + newline is a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, " ") + "\n";
  const bytesPer = dtype === "uint8" ? 1 : 4;
  const out = new Uint8Array(total + count * bytesPer);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  if (dtype === "uint8") out.set(Uint8Array.from(data), total);
  else out.set(new Uint8Array(Float32Array.from(data).buffer), total);
  return out;
}

export async function writeNpy(
  path: string,
  shape: readonly number[],
  data: ArrayLike<number>,
  dtype: NpyWriteDtype,
): Promise<void> {
  await writeFileAtomic(path, encodeNpy(shape, data, dtype));
}

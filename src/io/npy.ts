/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0; NEP 1). Reading takes any byte order, C or
 * Fortran order, and the real and complex dtypes below; arrays come back in C order as
 * Float32Array (complex interleaved). Writing produces float32 `<f4`, complex64 `<c8` or uint8
 * `|u1` in C order.
 */
import { UserError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { readInputFile } from "./files.js";

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
/** By dtype kind and item size (the descr without its byte-order character). */
const READERS: Record<string, [number, Reader]> = {
  f2: [2, (v, o, l) => halfToNumber(v.getUint16(o, l))],
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

/** IEEE 754 binary16 (NumPy float16); Node 20's DataView has no getFloat16. */
function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * Parses an .npy file's bytes; `name` (the path) goes into every error message. The header is the
 * Python dict literal of NEP 1: `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
 */
export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  const bad = (problem: string, code = "bad_file") => new UserError(`${name} ${problem}`, code, name);
  if (bytes.length < 8 || MAGIC.some((m, i) => bytes[i] !== m))
    throw bad("is not a NumPy .npy file (bad magic)");
  const [major, minor] = [bytes[6], bytes[7]];
  if (major < 1 || major > 3)
    throw bad(`is .npy format version ${major}.${minor}; versions 1.0, 2.0 and 3.0 are supported`);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) throw bad("is truncated (header)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (start + headerLen > bytes.length) throw bad("is truncated (header)");
  // NEP 1: latin1 for versions 1 and 2, utf-8 for version 3.
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(start, start + headerLen),
  );
  if (/['"]descr['"]\s*:\s*\[/.test(header))
    throw bad("has a structured dtype (record fields), which is not supported", "bad_dtype");
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*True/.test(header);
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw bad("has an unreadable .npy header");
  const dims = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  // Python 2 wrote long integers with an L suffix: (3L, 4L).
  if (dims.some((d) => !/^\d+L?$/.test(d))) throw bad(`has an unreadable shape (${shapeText})`);
  const shape = dims.map((d) => parseInt(d, 10));
  const order = descr[0];
  const kind = descr.slice(1);
  const reader = READERS[kind];
  if (!reader || !"<>|=".includes(order))
    throw bad(
      `has dtype '${descr}', which is not supported (bool, integers, float16/32/64, complex64/128)`,
      "bad_dtype",
    );
  // '=' is native order; every platform Node runs scorerecon on is little-endian.
  const little = order !== ">";
  const complex = kind.startsWith("c");
  const count = shape.reduce((a, b) => a * b, 1);
  const values = complex ? 2 * count : count;
  const [size, read] = reader;
  const offset = start + headerLen;
  if (offset + values * size > bytes.length)
    throw bad(
      `is truncated: shape (${shape.join(", ")}) of ${descr} needs ${values * size} bytes of data, found ${bytes.length - offset}`,
    );
  let data: Float32Array;
  if (size === 4 && little && (kind === "f4" || kind === "c8") && (bytes.byteOffset + offset) % 4 === 0)
    data = new Float32Array(bytes.buffer, bytes.byteOffset + offset, values).slice();
  else {
    data = new Float32Array(values);
    for (let i = 0; i < values; i++) data[i] = read(view, offset + i * size, little);
  }
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
  return parseNpy(readInputFile(path), path);
}

export type NpyWriteDtype = "float32" | "complex64" | "uint8";

/**
 * An .npy version 1.0 file in C order. `data` is interleaved re/im for complex64; uint8 values are
 * rounded and clamped to 0..255 (masks are 0/1). The header is padded with spaces and ends in a
 * newline so that the data starts at a multiple of 64 bytes, as NEP 1 asks.
 */
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
  if (dtype === "uint8") out.set(Uint8ClampedArray.from(data), total);
  else {
    // A Float32Array is copied as bytes (Float32Array.from would walk it value by value).
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    out.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), total);
  }
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

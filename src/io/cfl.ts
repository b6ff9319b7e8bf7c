/**
 * BART's .cfl/.hdr pair (Uecker et al., BART doc/dimensions-and-strides.txt): NAME.hdr is text,
 * "# Dimensions" then the dimensions; NAME.cfl is complex64 little-endian in column-major order
 * (dimension 0 fastest). BART's dimension 0 is the readout and 1 the phase encode; ours are rows
 * (readout) and columns (phase encode), so an array [slices, rows, cols] here is BART
 * [rows, cols, slices] there. Arrays come back in our C order, complex interleaved.
 */
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import type { NpyArray } from "./npy.js";

const base = (path: string) => path.replace(/\.(cfl|hdr)$/i, "");

export function readCfl(path: string): NpyArray {
  const b = base(path);
  if (!existsSync(`${b}.hdr`) || !existsSync(`${b}.cfl`))
    throw new UserError(`${b}: a BART array needs both ${b}.hdr and ${b}.cfl`, "not_found", path);
  const lines = readFileSync(`${b}.hdr`, "utf8").split("\n");
  const at = lines.findIndex((l) => l.trim() === "# Dimensions");
  const dims = at >= 0 ? lines[at + 1].trim().split(/\s+/).map(Number) : [];
  if (!dims.length || dims.some((d) => !Number.isInteger(d) || d < 1))
    throw new UserError(`${b}.hdr has no valid "# Dimensions" line`, "bad_file", path);
  const [rows, cols = 1, ...rest] = dims;
  const slices = rest.reduce((a, d) => a * d, 1);
  const n = rows * cols * slices;
  const bytes = readFileSync(`${b}.cfl`);
  if (bytes.length < 8 * n)
    throw new UserError(
      `${b}.cfl is truncated: ${dims.join("x")} complex values need ${8 * n} bytes, found ${bytes.length}`,
      "bad_file",
      path,
    );
  const src = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 8 * n));
  const data = new Float32Array(2 * n);
  for (let s = 0; s < slices; s++)
    for (let c = 0; c < cols; c++)
      for (let r = 0; r < rows; r++) {
        const from = 2 * (r + rows * (c + cols * s)),
          to = 2 * ((s * rows + r) * cols + c);
        data[to] = src[from];
        data[to + 1] = src[from + 1];
      }
  return { shape: slices > 1 ? [slices, rows, cols] : [rows, cols], data, complex: true, dtype: "cfl" };
}

/** Writes [rows, cols] or [slices, rows, cols]; real data is written with zero imaginary part. */
export async function writeCfl(
  path: string,
  shape: readonly number[],
  data: ArrayLike<number>,
  complex: boolean,
): Promise<void> {
  const [slices, rows, cols] = shape.length === 3 ? shape : [1, shape[0], shape[1]];
  const n = slices * rows * cols;
  const out = new Float32Array(2 * n);
  for (let s = 0; s < slices; s++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const from = (s * rows + r) * cols + c,
          to = 2 * (r + rows * (c + cols * s));
        out[to] = complex ? data[2 * from] : data[from];
        out[to + 1] = complex ? data[2 * from + 1] : 0;
      }
  const b = base(path);
  const dims = [rows, cols, slices, ...new Array(13).fill(1)];
  await writeFileAtomic(`${b}.cfl`, new Uint8Array(out.buffer));
  await writeFileAtomic(`${b}.hdr`, Buffer.from(`# Dimensions\n${dims.join(" ")}\n`));
}

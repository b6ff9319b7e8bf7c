/**
 * DICOM pixels (PS3.3 C.7.6.3): BitsAllocated 8/16/32, PixelRepresentation signed or unsigned,
 * values masked to BitsStored (sign-extended when signed), RescaleSlope/Intercept applied (CT values
 * are HU), MONOCHROME1 inverted to the MONOCHROME2 sense. Colour images are refused. Transfer
 * syntaxes: implicit and explicit VR little endian, explicit VR big endian, deflated, and the
 * encapsulated ones of dicom-codecs.ts (RLE, JPEG baseline 8-bit, JPEG lossless, JPEG-LS,
 * JPEG 2000); others give a one-line error naming the syntax.
 */
import dicomParser from "dicom-parser";
import { UserError } from "../errors.js";
import type { DecompressionBudget } from "./decompression.js";
import { decodeFrame, ENCAPSULATED, type FrameInfo } from "./dicom-codecs.js";
import { frames, type Instance } from "./dicom-files.js";

const SYNTAXES: Record<string, string> = {
  "1.2.840.10008.1.2": "implicit VR little endian",
  "1.2.840.10008.1.2.1": "explicit VR little endian",
  "1.2.840.10008.1.2.2": "explicit VR big endian",
  "1.2.840.10008.1.2.1.99": "deflated explicit VR little endian",
  "1.2.840.10008.1.2.5": "RLE lossless",
  "1.2.840.10008.1.2.4.50": "JPEG baseline",
  "1.2.840.10008.1.2.4.51": "JPEG extended",
  "1.2.840.10008.1.2.4.57": "JPEG lossless",
  "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
};
const NATIVE = new Set([
  "1.2.840.10008.1.2",
  "1.2.840.10008.1.2.1",
  "1.2.840.10008.1.2.2",
  "1.2.840.10008.1.2.1.99",
]);

export const syntaxName = (uid: string) => SYNTAXES[uid] ?? `transfer syntax ${uid}`;

/** The raw bytes of each frame: native pixel data as stored, encapsulated frames decoded. */
async function frameBytes(
  inst: Instance,
  syntax: string,
  info: FrameInfo,
  budget: DecompressionBudget,
): Promise<{ bytes: Uint8Array; little: boolean }[]> {
  const { ds, file } = inst;
  const n = info.rows * info.cols,
    bytesPer = info.bitsAllocated / 8;
  const el = ds.elements.x7fe00010;
  const count = frames(ds);
  if (NATIVE.has(syntax)) {
    if (el.dataOffset + el.length > ds.byteArray.length || el.length < count * n * bytesPer)
      throw new UserError(
        `${file} is truncated: Pixel Data holds ${Math.min(el.length, ds.byteArray.length - el.dataOffset)} bytes, ${count} frame(s) need ${count * n * bytesPer}`,
        "bad_dicom",
        file,
      );
    const little = syntax !== "1.2.840.10008.1.2.2";
    return Array.from({ length: count }, (_, f) => ({
      bytes: ds.byteArray.subarray(el.dataOffset + f * n * bytesPer, el.dataOffset + (f + 1) * n * bytesPer),
      little,
    }));
  }
  if (!ENCAPSULATED[syntax])
    throw new UserError(
      `${file} uses ${syntaxName(syntax)} (${syntax}), which scorerecon cannot decode`,
      "bad_dicom",
      file,
    );
  const out: { bytes: Uint8Array; little: boolean }[] = [];
  for (let f = 0; f < count; f++) {
    // Each decoded frame is decompressed data: taken from the budget before it is made.
    budget.take(n * bytesPer, file);
    let encoded: Uint8Array;
    try {
      encoded =
        el.basicOffsetTable && el.basicOffsetTable.length
          ? dicomParser.readEncapsulatedImageFrame(ds, el, f)
          : count === 1
            ? dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments!.length)
            : dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, f, 1);
      const bytes = await decodeFrame(syntax, encoded, info);
      if (bytes.length < n * bytesPer)
        throw new Error(`decoded ${bytes.length} bytes, expected ${n * bytesPer}`);
      out.push({ bytes, little: true });
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(
        `${file}: cannot decode frame ${f} (${syntaxName(syntax)}): ${(e as Error).message ?? e}`,
        "bad_dicom",
        file,
      );
    }
  }
  return out;
}

/** Decodes one instance's frames (rescaled, MONOCHROME2 sense). */
export async function decodeFrames(
  inst: Instance,
  rows: number,
  cols: number,
  budget: DecompressionBudget,
): Promise<Float32Array[]> {
  const { ds, file } = inst;
  const syntax = ds.string("x00020010") ?? "1.2.840.10008.1.2";
  const spp = ds.uint16("x00280002") ?? 1;
  const photometric = (ds.string("x00280004") ?? "MONOCHROME2").trim();
  if (spp !== 1 || !photometric.startsWith("MONOCHROME"))
    throw new UserError(
      `${file} is a colour image (${photometric}); colour images are not supported (a reconstruction tool works on grey levels)`,
      "bad_dicom",
      file,
    );
  const bits = ds.uint16("x00280100") ?? 16;
  const stored = ds.uint16("x00280101") ?? bits;
  const signed = (ds.uint16("x00280103") ?? 0) === 1;
  const slope = ds.floatString("x00281053") ?? 1;
  const intercept = ds.floatString("x00281052") ?? 0;
  if (![8, 16, 32].includes(bits))
    throw new UserError(`${file} has BitsAllocated ${bits}; 8, 16 or 32 are supported`, "bad_dicom", file);
  const n = rows * cols;
  const bytesPer = bits / 8;
  const mask = stored >= 32 ? 0xffffffff : 2 ** stored - 1;
  const info = { rows, cols, bitsAllocated: bits, bitsStored: stored, signed };
  // Loop invariants hoisted: this loop runs once per pixel of every slice.
  const masked = stored < 32,
    full = 2 ** Math.min(stored, 32),
    half = full / 2,
    mono1 = photometric === "MONOCHROME1";
  return (await frameBytes(inst, syntax, info, budget)).map(({ bytes, little }) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const frame = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * bytesPer;
      let raw =
        bits === 8 ? view.getUint8(o) : bits === 16 ? view.getUint16(o, little) : view.getUint32(o, little);
      if (masked) {
        raw &= mask;
        if (signed && raw >= half) raw -= full;
      } else if (signed) raw |= 0;
      // MONOCHROME1: the minimum is white (PS3.3 C.7.6.3.1.2); invert within the stored range.
      if (mono1) raw = signed ? -1 - raw : mask - raw;
      frame[i] = raw * slope + intercept;
    }
    return frame;
  });
}

/**
 * Decoders for encapsulated (compressed) DICOM pixel data, PS3.5 A.4. Each returns the frame's
 * samples as little-endian bytes of BitsAllocated width, so one code path converts every syntax to
 * values. The codecs are the field's standard WebAssembly builds (@cornerstonejs/codec-charls,
 * -openjpeg, -libjpeg-turbo-8bit) and jpeg-lossless-decoder-js; RLE (PS3.5 Annex G) is PackBits
 * over byte planes and is decoded here. JPEG extended (8- and 12-bit, PS3.5 A.4.1) goes to the
 * IJG 8/12-bit decoders in dcmjs-codecs' WebAssembly build, which decode like DCMTK's dcmdjpeg
 * (Cornerstone's libjpeg-turbo build is 8-bit only, and its JavaScript 12-bit decoder shifts
 * 12-bit levels by about +15).
 */
import { createRequire } from "node:module";
import type * as DcmjsCodecs from "dcmjs-codecs";
import { Decoder as JpegLosslessDecoder } from "jpeg-lossless-decoder-js";

const require = createRequire(import.meta.url);

interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  delete?(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;

const modules = new Map<string, Promise<WasmModule>>();
function wasm(pkg: string): Promise<WasmModule> {
  let m = modules.get(pkg);
  if (!m) {
    // Emscripten factories; the .wasm beside each is read from the installed package.
    const factory = require(`${pkg}/decodewasmjs`) as () => Promise<WasmModule>;
    m = factory();
    modules.set(pkg, m);
  }
  return m;
}

async function decodeWith(pkg: string, cls: string, bytes: Uint8Array): Promise<Uint8Array> {
  const mod = await wasm(pkg);
  const d = new mod[cls]();
  try {
    d.getEncodedBuffer(bytes.length).set(bytes);
    d.decode();
    return Uint8Array.from(d.getDecodedBuffer());
  } finally {
    d.delete?.();
  }
}

/** What a decoder needs to know of the frame beyond its bytes. */
export interface FrameInfo {
  rows: number;
  cols: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
}

let ijg: Promise<typeof DcmjsCodecs> | undefined;
/** dcmjs-codecs with its WebAssembly (read from the installed package) initialised, once. */
function ijgCodecs(): Promise<typeof DcmjsCodecs> {
  ijg ??= (async () => {
    const m = require("dcmjs-codecs") as typeof DcmjsCodecs;
    await m.NativeCodecs.initializeAsync();
    return m;
  })();
  return ijg;
}

async function decodeJpegExtended(frame: Uint8Array, f: FrameInfo): Promise<Uint8Array> {
  const { Context, NativeCodecs } = await ijgCodecs();
  const context = new Context({
    width: f.cols,
    height: f.rows,
    bitsAllocated: f.bitsAllocated,
    bitsStored: f.bitsStored,
    samplesPerPixel: 1,
    pixelRepresentation: f.signed ? 1 : 0,
    planarConfiguration: 0,
    photometricInterpretation: "MONOCHROME2",
    encodedBuffer: frame,
  });
  const decoded = NativeCodecs.decodeJpeg(context, {}).getDecodedBuffer();
  if (!decoded) throw new Error("the JPEG decoder returned no pixels");
  return Uint8Array.from(decoded);
}

/** PS3.5 Annex G: a 64-byte header of segment offsets, then one PackBits segment per byte plane. */
export function decodeRle(frame: Uint8Array, pixels: number, bytesPer: number): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== bytesPer) throw new Error(`RLE frame has ${segments} segments, expected ${bytesPer}`);
  const out = new Uint8Array(pixels * bytesPer);
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : frame.length;
    // Segment 0 holds the most significant bytes; little-endian output puts them last.
    const plane = bytesPer - 1 - s;
    let i = start,
      p = 0;
    while (i < end && p < pixels) {
      const n = (frame[i++] << 24) >> 24;
      if (n >= 0) for (let k = 0; k <= n && p < pixels; k++) out[p++ * bytesPer + plane] = frame[i++];
      else if (n > -128) {
        const v = frame[i++];
        for (let k = 0; k < 1 - n && p < pixels; k++) out[p++ * bytesPer + plane] = v;
      }
    }
  }
  return out;
}

export const ENCAPSULATED: Record<string, string> = {
  "1.2.840.10008.1.2.5": "rle",
  "1.2.840.10008.1.2.4.50": "jpeg",
  "1.2.840.10008.1.2.4.51": "jpeg-extended",
  "1.2.840.10008.1.2.4.57": "jpeg-lossless",
  "1.2.840.10008.1.2.4.70": "jpeg-lossless",
  "1.2.840.10008.1.2.4.80": "jpeg-ls",
  "1.2.840.10008.1.2.4.81": "jpeg-ls",
  "1.2.840.10008.1.2.4.90": "j2k",
  "1.2.840.10008.1.2.4.91": "j2k",
};

export async function decodeFrame(syntax: string, frame: Uint8Array, info: FrameInfo): Promise<Uint8Array> {
  const pixels = info.rows * info.cols,
    bytesPer = info.bitsAllocated / 8;
  switch (ENCAPSULATED[syntax]) {
    case "rle":
      return decodeRle(frame, pixels, bytesPer);
    case "jpeg-lossless": {
      const decoded = new JpegLosslessDecoder().decompress(
        frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer,
        0,
        frame.byteLength,
      );
      return new Uint8Array(decoded);
    }
    case "jpeg-ls":
      return decodeWith("@cornerstonejs/codec-charls", "JpegLSDecoder", frame);
    case "j2k":
      return decodeWith("@cornerstonejs/codec-openjpeg", "J2KDecoder", frame);
    case "jpeg-extended":
      return decodeJpegExtended(frame, info);
    case "jpeg":
      // Baseline JPEG is 8-bit by definition (PS3.5 A.4.1: process 1).
      if (bytesPer !== 1) throw new Error(`JPEG baseline holds 8-bit samples, not ${info.bitsAllocated}-bit`);
      return decodeWith("@cornerstonejs/codec-libjpeg-turbo-8bit", "JPEGDecoder", frame);
    default:
      throw new Error(`no decoder for ${syntax}`);
  }
}

/**
 * Decoders for encapsulated (compressed) DICOM pixel data, PS3.5 A.4. Each returns the frame's
 * samples as little-endian bytes of BitsAllocated width, so one code path converts every syntax to
 * values. The codecs are the field's standard WebAssembly builds (@cornerstonejs/codec-charls,
 * -openjpeg, -libjpeg-turbo-8bit) and jpeg-lossless-decoder-js; RLE (PS3.5 Annex G) is PackBits
 * over byte planes and is decoded here.
 */
import { createRequire } from "node:module";
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
  "1.2.840.10008.1.2.4.51": "jpeg",
  "1.2.840.10008.1.2.4.57": "jpeg-lossless",
  "1.2.840.10008.1.2.4.70": "jpeg-lossless",
  "1.2.840.10008.1.2.4.80": "jpeg-ls",
  "1.2.840.10008.1.2.4.81": "jpeg-ls",
  "1.2.840.10008.1.2.4.90": "j2k",
  "1.2.840.10008.1.2.4.91": "j2k",
};

export async function decodeFrame(
  syntax: string,
  frame: Uint8Array,
  pixels: number,
  bytesPer: number,
): Promise<Uint8Array> {
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
    case "jpeg":
      // libjpeg-turbo 8-bit covers baseline; 12-bit extended JPEG would need another codec.
      if (bytesPer !== 1) throw new Error("JPEG extended (12-bit) is not supported; baseline 8-bit is");
      return decodeWith("@cornerstonejs/codec-libjpeg-turbo-8bit", "JPEGDecoder", frame);
    default:
      throw new Error(`no decoder for ${syntax}`);
  }
}

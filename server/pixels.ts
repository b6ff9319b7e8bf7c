/**
 * Slices as the viewer's image loader takes them. Cornerstone renders integer pixels through a
 * modality LUT, so float images are quantised to int16 with a rescale slope and intercept
 * (real = stored x slope + intercept, DICOM PS3.3 C.11.1.1.2); `format=float32` sends the values
 * as they are. Pixels travel base64-encoded, little-endian, row-major.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { fullRange } from "../src/io/png.js";
import { named } from "./api-schemas.js";

export const SlicePixelsSchema = named(
  "SlicePixels",
  z
    .object({
      rows: z.number().int(),
      cols: z.number().int(),
      dtype: z.enum(["int16", "float32"]),
      slope: z.number(),
      intercept: z.number(),
      min: z.number(),
      max: z.number(),
      window: z.object({ center: z.number(), width: z.number() }),
      units: z.string(),
      spacing: z.array(z.number()).readonly(),
      pixels: z.string().meta({ contentEncoding: "base64", description: "little-endian, row-major" }),
    })
    .meta({ description: "one slice: real value = stored x slope + intercept" }),
);

export type SlicePixels = z.infer<typeof SlicePixelsSchema>;

export function encodeSlice(
  data: Float32Array,
  rows: number,
  cols: number,
  o: {
    dtype: "int16" | "float32";
    window: { center: number; width: number };
    units: string;
    spacing: readonly number[];
  },
): SlicePixels {
  const { min, max } = fullRange(data);
  const common = { rows, cols, min, max, window: o.window, units: o.units, spacing: o.spacing };
  if (o.dtype === "float32")
    return {
      ...common,
      dtype: "float32",
      slope: 1,
      intercept: 0,
      pixels: Buffer.from(Float32Array.from(data).buffer).toString("base64"),
    };
  // Integer data that fits int16 (CT in HU) is sent exactly; anything else spans -32767..32767.
  const integral = min >= -32768 && max <= 32767 && data.every((v) => Number.isInteger(v));
  const slope = integral ? 1 : (max - min) / 65534 || 1;
  const intercept = integral ? 0 : (max + min) / 2;
  const out = new Int16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.round((data[i] - intercept) / slope);
  return { ...common, dtype: "int16", slope, intercept, pixels: Buffer.from(out.buffer).toString("base64") };
}

/**
 * Encoded slice answers (the JSON bytes), by URL, least recently used first out past `maxBytes`.
 * A slice answer never changes once it can be given (a study's slice, a finished result slice),
 * so many viewers scrolling the same study cost one encoding per slice.
 */
export class EncodedSlices {
  private readonly entries = new Map<string, EncodedSlice>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string, encode: () => Buffer): EncodedSlice {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const body = encode();
    // Its ETag once, not at every answer (Express would hash the body each time).
    const entry = { body, etag: `"${createHash("sha1").update(body).digest("base64url")}"` };
    if (body.length > this.maxBytes) return entry;
    this.entries.set(key, entry);
    this.bytes += body.length;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.body.length;
    }
    return entry;
  }
}

export interface EncodedSlice {
  body: Buffer;
  etag: string;
}

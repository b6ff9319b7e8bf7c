/** Answers with one slice's pixels (server/pixels.ts), encoded once and cached by URL. */
import type { Request, Response } from "express";
import { z } from "zod";
import type { Volume } from "../../src/image/volume.js";
import { choice } from "../paging.js";
import { encodeSlice, type EncodedSlices } from "../pixels.js";
import { HttpError } from "./errors.js";

export const SliceQuery = z.object({
  format: choice(["int16", "float32"]).meta({
    description: "int16 with slope/intercept (real = stored x slope + intercept) or float32 values",
  }),
});

/** The slice index `text` of a volume of `slices` slices; a 404 names the range. */
export function sliceIndex(text: string, slices: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n >= slices)
    throw new HttpError(
      404,
      `no slice ${/^\d{1,9}$/.test(text) ? n : ""} (0..${slices - 1})`.trim(),
      "not_found",
      "n",
    );
  return n;
}

/**
 * A slice's pixels as JSON, kept in `cache` (by URL, format and `variant`), so `compute` runs once
 * per slice. Slices of a study and of a done job never change: `immutable`, the client keeps them.
 * Those of a job not done may (a `-std` map's window is its own only once the job is done): the
 * client revalidates them by their ETag.
 */
export function sendSlice(
  req: Request,
  res: Response,
  cache: EncodedSlices,
  format: z.infer<typeof SliceQuery>["format"],
  compute: () => [Float32Array, Volume, { center: number; width: number }],
  { variant = "", immutable }: { variant?: string; immutable: boolean },
): void {
  const { body, etag } = cache.get(`${req.baseUrl}${req.path}?${format}&${variant}`, () => {
    const [data, v, window] = compute();
    const pixels = encodeSlice(data, v.rows, v.cols, {
      dtype: format,
      window,
      units: v.units,
      spacing: v.spacing,
    });
    return Buffer.from(JSON.stringify(pixels));
  });
  res.set({
    "Cache-Control": immutable ? "private, max-age=31536000, immutable" : "private, no-cache",
    ETag: etag,
  });
  res.type("application/json").send(body);
}

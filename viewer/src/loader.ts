/**
 * The `scorerecon:` Cornerstone image loader. Image ids are API paths:
 * `scorerecon:/studies/<id>/series/<sid>/slices/<n>` or `scorerecon:/jobs/<id>/results/<m>/slices/<n>`
 * (and `.../error/slices/<n>`). Slices arrive as int16 with a rescale slope and intercept, which
 * Cornerstone applies through its modality LUT, so window/level work in real units (HU for CT).
 */
import * as cornerstone from "cornerstone-core";
import { get, type SlicePixels } from "./api.js";

function toImage(imageId: string, s: SlicePixels): cornerstone.Image {
  const bytes = Uint8Array.from(atob(s.pixels), (c) => c.charCodeAt(0));
  const pixels = new Int16Array(bytes.buffer);
  let lo = 32767,
    hi = -32768;
  for (const v of pixels) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return {
    imageId,
    minPixelValue: lo,
    maxPixelValue: hi,
    slope: s.slope,
    intercept: s.intercept,
    windowCenter: s.window.center,
    windowWidth: s.window.width,
    rows: s.rows,
    columns: s.cols,
    height: s.rows,
    width: s.cols,
    color: false,
    rowPixelSpacing: s.spacing[0] ?? 1,
    columnPixelSpacing: s.spacing[1] ?? 1,
    sizeInBytes: pixels.byteLength,
    getPixelData: () => pixels,
  };
}

export function registerLoader(): void {
  cornerstone.registerImageLoader("scorerecon", (imageId) => ({
    promise: get<SlicePixels>(imageId.slice("scorerecon:".length)).then((s) => toImage(imageId, s)),
  }));
}

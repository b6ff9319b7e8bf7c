import type { Image2D } from "./volume.js";

/** Tiles equally sized images row by row into a grid with `gap` pixels between tiles. */
export function montage(
  images: readonly Image2D[],
  columns = Math.ceil(Math.sqrt(images.length)),
  gap = 2,
  background = 0,
): Image2D {
  const { rows: h, cols: w } = images[0];
  const gridRows = Math.ceil(images.length / columns);
  const rows = gridRows * h + (gridRows - 1) * gap,
    cols = columns * w + (columns - 1) * gap;
  const data = new Float32Array(rows * cols).fill(background);
  images.forEach((im, k) => {
    const r0 = Math.floor(k / columns) * (h + gap),
      c0 = (k % columns) * (w + gap);
    for (let r = 0; r < h; r++) data.set(im.data.subarray(r * w, (r + 1) * w), (r0 + r) * cols + c0);
  });
  return { rows, cols, data };
}

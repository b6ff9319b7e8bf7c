/** 8-bit greyscale PNG (pngjs): windowed output for viewing, and greyscale input. */
import { readFileSync } from "node:fs";
import { PNG } from "pngjs";
import { UserError } from "../errors.js";
import type { Image2D } from "../image/volume.js";
import { writeFileAtomic } from "./atomic.js";

export interface DisplayWindow {
  min: number;
  max: number;
}

/** The image's own min..max. */
export function fullRange(data: Float32Array): DisplayWindow {
  let min = Infinity,
    max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** Maps [min, max] linearly to 0..255 (clipped). The default window is the image's min..max. */
export function encodePng(image: Image2D, window: DisplayWindow = fullRange(image.data)): Buffer {
  const png = new PNG({
    width: image.cols,
    height: image.rows,
    colorType: 0,
    inputColorType: 0,
    inputHasAlpha: false,
  });
  const span = window.max - window.min || 1;
  const grey = Buffer.alloc(image.rows * image.cols);
  for (let i = 0; i < grey.length; i++) {
    const v = ((image.data[i] - window.min) / span) * 255;
    grey[i] = Math.max(0, Math.min(255, Math.round(v)));
  }
  png.data = grey;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

export async function writePng(path: string, image: Image2D, window?: DisplayWindow): Promise<void> {
  await writeFileAtomic(path, encodePng(image, window));
}

/** A greyscale (or R = G = B) PNG as values 0..255. */
export function readPng(path: string): Image2D {
  let png: PNG;
  try {
    png = PNG.sync.read(readFileSync(path));
  } catch (e) {
    throw new UserError(`${path} is not a readable PNG (${(e as Error).message})`, "bad_file", path);
  }
  const { width: cols, height: rows, data } = png;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    const r = data[4 * i],
      g = data[4 * i + 1],
      b = data[4 * i + 2];
    if (r !== g || g !== b)
      throw new UserError(
        `${path} is a colour image; colour images are not supported (a reconstruction tool works on grey levels)`,
        "bad_file",
        path,
      );
    out[i] = r;
  }
  return { rows, cols, data: out };
}

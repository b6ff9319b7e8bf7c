/**
 * PNG (pngjs). Output is 8-bit greyscale through a display window, for viewing; input is
 * greyscale (or R = G = B) at any bit depth, values as stored.
 */
import { PNG } from "pngjs";
import { UserError } from "../errors.js";
import { valueRange } from "../image/stats.js";
import type { Image2D } from "../image/volume.js";
import { writeFileAtomic } from "./atomic.js";
import { readInputFile } from "./files.js";

export interface DisplayWindow {
  min: number;
  max: number;
}

/** PNG specification, 5.2: the eight bytes every PNG file starts with. */
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The image's own min..max over its finite values ({0, 1} when it has none). */
export function fullRange(data: Float32Array): DisplayWindow {
  const r = valueRange(data);
  return r.min <= r.max ? r : { min: 0, max: 1 };
}

/**
 * Maps [min, max] linearly to 0..255, clipping outside it; NaN is drawn black. The default window
 * is the image's full finite range (not a percentile window), so a PNG of an image never hides
 * its extremes and two images drawn with one explicit window compare grey for grey.
 */
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
    grey[i] = Number.isNaN(v) ? 0 : Math.max(0, Math.min(255, Math.round(v)));
  }
  png.data = grey;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

export async function writePng(path: string, image: Image2D, window?: DisplayWindow): Promise<void> {
  await writeFileAtomic(path, encodePng(image, window));
}

/**
 * A greyscale PNG (or a colour one whose pixels all have R = G = B) as its stored values: 0..255
 * for 8-bit, 0..65535 for 16-bit; 1-, 2- and 4-bit grey is scaled to 0..255. Alpha is ignored.
 */
export function readPng(path: string): Image2D {
  const bytes = readInputFile(path);
  if (bytes.length < SIGNATURE.length || !bytes.subarray(0, SIGNATURE.length).equals(SIGNATURE))
    throw new UserError(`${path} is not a PNG file (bad signature)`, "bad_file", path);
  let png: PNG & { depth: number; colorType: number };
  try {
    // skipRescale keeps 16-bit samples as they are (pngjs would round them to 8 bits).
    png = PNG.sync.read(bytes, { skipRescale: true }) as PNG & { depth: number; colorType: number };
  } catch (e) {
    throw new UserError(`${path} is not a readable PNG (${(e as Error).message})`, "bad_file", path);
  }
  const { width: cols, height: rows, data, depth, colorType } = png;
  // Palette entries are already 8-bit; low-depth grey comes back as 0..2^depth - 1.
  const scale = colorType !== 3 && depth < 8 ? 255 / (2 ** depth - 1) : 1;
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
    out[i] = r * scale;
  }
  return { rows, cols, data: out };
}

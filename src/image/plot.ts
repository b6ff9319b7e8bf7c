import type { Image2D } from "./volume.js";

/**
 * A minimal line plot as a greyscale image (for loss curves in training folders): the series is
 * smoothed by a moving average of `smooth` points, scaled to its range, drawn with a frame.
 */
export function linePlot(values: readonly number[], width = 600, height = 300, smooth = 50): Image2D {
  const data = new Float32Array(width * height);
  const set = (x: number, y: number, v = 1) => {
    if (x >= 0 && x < width && y >= 0 && y < height) data[y * width + x] = v;
  };
  for (let x = 0; x < width; x++) {
    set(x, 0, 0.5);
    set(x, height - 1, 0.5);
  }
  for (let y = 0; y < height; y++) {
    set(0, y, 0.5);
    set(width - 1, y, 0.5);
  }
  if (values.length < 2) return { rows: height, cols: width, data };
  const avg: number[] = [];
  let acc = 0;
  values.forEach((v, i) => {
    acc += v;
    if (i >= smooth) acc -= values[i - smooth];
    avg.push(acc / Math.min(i + 1, smooth));
  });
  const lo = Math.min(...avg),
    hi = Math.max(...avg);
  const px = (i: number) => Math.round(4 + ((width - 9) * i) / (avg.length - 1));
  const py = (v: number) => Math.round(height - 5 - ((height - 10) * (v - lo)) / (hi - lo || 1));
  for (let i = 1; i < avg.length; i++) {
    // Bresenham between consecutive points.
    let x0 = px(i - 1),
      y0 = py(avg[i - 1]);
    const x1 = px(i),
      y1 = py(avg[i]);
    const dx = Math.abs(x1 - x0),
      dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1,
      sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      set(x0, y0);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  return { rows: height, cols: width, data };
}

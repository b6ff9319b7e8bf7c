import { describe, expect, it } from "vitest";
import { Fft1d, fft2c, ifft2c } from "../../operators/fft.js";
import { dot } from "../../operators/linear-operator.js";
import { randomVector } from "../helpers.js";

/** Naive centred orthonormal 2-D DFT, straight from the definition, in float64. */
function naiveFft2c(x: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(2 * rows * cols);
  const hr = Math.floor(rows / 2),
    hc = Math.floor(cols / 2);
  for (let kr = 0; kr < rows; kr++)
    for (let kc = 0; kc < cols; kc++) {
      let re = 0,
        im = 0;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          // Centred indices: both image and k-space origins sit at floor(n/2).
          const a = -2 * Math.PI * (((kr - hr) * (r - hr)) / rows + ((kc - hc) * (c - hc)) / cols);
          const xr = x[2 * (r * cols + c)],
            xi = x[2 * (r * cols + c) + 1];
          re += xr * Math.cos(a) - xi * Math.sin(a);
          im += xr * Math.sin(a) + xi * Math.cos(a);
        }
      const s = 1 / Math.sqrt(rows * cols);
      out[2 * (kr * cols + kc)] = re * s;
      out[2 * (kr * cols + kc) + 1] = im * s;
    }
  return out;
}

describe("1-D FFT (fft.js and Bluestein)", () => {
  it.each([1, 2, 3, 7, 8, 12, 64, 96, 100, 218, 240, 320, 384, 640])(
    "matches the DFT definition at n=%i",
    (n) => {
      const x = Float64Array.from(randomVector(2 * n, n));
      const want = new Float64Array(2 * n);
      for (let k = 0; k < n; k++)
        for (let j = 0; j < n; j++) {
          const a = (-2 * Math.PI * ((j * k) % n)) / n;
          want[2 * k] += x[2 * j] * Math.cos(a) - x[2 * j + 1] * Math.sin(a);
          want[2 * k + 1] += x[2 * j] * Math.sin(a) + x[2 * j + 1] * Math.cos(a);
        }
      const got = x.slice();
      new Fft1d(n).transform(got, -1);
      let err = 0,
        ref = 0;
      for (let i = 0; i < 2 * n; i++) {
        err = Math.max(err, Math.abs(got[i] - want[i]));
        ref = Math.max(ref, Math.abs(want[i]));
      }
      expect(err / ref).toBeLessThan(1e-10);
      // Inverse brings it back (times n).
      new Fft1d(n).transform(got, 1);
      for (let i = 0; i < 2 * n; i++) expect(got[i] / n).toBeCloseTo(x[i], 10);
    },
  );
});

describe("centred orthonormal 2-D FFT", () => {
  it.each([
    [8, 8],
    [5, 7],
    [6, 9],
    [12, 10],
  ])("matches a naive centred DFT to 1e-5 at %ix%i", (rows, cols) => {
    const x = randomVector(2 * rows * cols, rows * 100 + cols);
    const got = fft2c(x, rows, cols);
    const want = naiveFft2c(x, rows, cols);
    let err = 0,
      ref = 0;
    for (let i = 0; i < got.length; i++) {
      err = Math.max(err, Math.abs(got[i] - want[i]));
      ref = Math.max(ref, Math.abs(want[i]));
    }
    expect(err / ref).toBeLessThan(1e-5);
  });

  it("matches numpy's fftshift(fft2(ifftshift(x), norm='ortho')) on a committed vector", () => {
    // x[r, c] = cos(2(rC + c)) + i cos(2(rC + c) + 1), 5x6; numpy 2.4 output, first 3 entries.
    const rows = 5,
      cols = 6;
    const x = new Float32Array(2 * rows * cols);
    for (let i = 0; i < x.length; i++) x[i] = Math.cos(i);
    const k = fft2c(x, rows, cols);
    const numpy = [-0.00943, -0.06748, -0.09638, 1.00618, -0.05875, 0.10379];
    numpy.forEach((v, i) => expect(k[i]).toBeCloseTo(v, 4));
  });

  it("puts DC at (floor(rows/2), floor(cols/2)) with orthonormal scale", () => {
    for (const [rows, cols] of [
      [6, 8],
      [7, 5],
    ]) {
      const x = new Float32Array(2 * rows * cols);
      for (let i = 0; i < rows * cols; i++) x[2 * i] = 1;
      const k = fft2c(x, rows, cols);
      const dc = 2 * (Math.floor(rows / 2) * cols + Math.floor(cols / 2));
      expect(k[dc]).toBeCloseTo(Math.sqrt(rows * cols), 4);
    }
  });

  it.each([
    [64, 64],
    [218, 170],
    [33, 40],
  ])("keeps energy (Parseval) and inverts exactly at %ix%i", (rows, cols) => {
    const x = randomVector(2 * rows * cols, 7);
    const k = fft2c(x, rows, cols);
    expect(dot(k, k) / dot(x, x)).toBeCloseTo(1, 5);
    const back = ifft2c(k, rows, cols);
    let err = 0;
    for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(back[i] - x[i]));
    expect(err).toBeLessThan(1e-5);
  });
});

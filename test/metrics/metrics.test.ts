import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Image2D } from "../../src/image/volume.js";
import { mse, nmse, psnr, ssim, ssimMap, type SsimVariant } from "../../src/metrics/index.js";
import { randomVector } from "../helpers.js";

interface Scores {
  psnr: number;
  ssimWang: number;
  ssimFastmri: number;
}
interface ReferenceCase extends Scores {
  name: string;
  rows: number;
  cols: number;
  offset: number;
  dataRange: number;
  nmse: number;
  /** scikit-image fed the float32 arrays themselves (it then computes in float32). */
  float32Input: Scores;
}

// Made by test/fixtures/metrics/make-reference.py with Debian's python3-skimage; never run here.
const dir = new URL("../fixtures/metrics/", import.meta.url);
const reference = JSON.parse(readFileSync(new URL("reference.json", dir), "utf8")) as {
  skimage: string;
  cases: ReferenceCase[];
};
const blob = readFileSync(new URL("images.bin", dir));
const floats = new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));

function pair(c: ReferenceCase): [Image2D, Image2D] {
  const n = c.rows * c.cols;
  return [
    { rows: c.rows, cols: c.cols, data: floats.subarray(c.offset, c.offset + n) },
    { rows: c.rows, cols: c.cols, data: floats.subarray(c.offset + n, c.offset + 2 * n) },
  ];
}

const image = (rows: number, cols: number, f: (r: number, c: number) => number): Image2D => ({
  rows,
  cols,
  data: Float32Array.from({ length: rows * cols }, (_, i) => f(Math.floor(i / cols), i % cols)),
});

describe(`metrics against scikit-image ${reference.skimage} (committed reference numbers)`, () => {
  // Measured deviation is below 1e-10 (float64 both sides); 1e-6 leaves room for summation order.
  const tol = 1e-6;
  it("has the reference cases", () => {
    expect(reference.cases.length).toBeGreaterThanOrEqual(10);
    expect(floats.length).toBe(reference.cases.reduce((s, c) => s + 2 * c.rows * c.cols, 0));
  });
  describe.each(reference.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const [ref, test] = pair(c);
    it("PSNR = peak_signal_noise_ratio", () => {
      expect(Math.abs(psnr(ref, test, c.dataRange) - c.psnr)).toBeLessThan(tol);
    });
    it("SSIM wang = structural_similarity(gaussian_weights, sigma 1.5, population covariance)", () => {
      expect(Math.abs(ssim(ref, test, { dataRange: c.dataRange }) - c.ssimWang)).toBeLessThan(tol);
      expect(ssim(ref, test, { dataRange: c.dataRange, variant: "wang" })).toBe(
        ssim(ref, test, { dataRange: c.dataRange }),
      );
    });
    it("SSIM fastmri = structural_similarity with skimage defaults", () => {
      const s = ssim(ref, test, { dataRange: c.dataRange, variant: "fastmri" });
      expect(Math.abs(s - c.ssimFastmri)).toBeLessThan(tol);
    });
    it("NMSE = ||ref - test||^2 / ||ref||^2", () => {
      expect(Math.abs(nmse(ref, test) - c.nmse)).toBeLessThan(tol * c.nmse);
    });
    it("stays within 1e-3 of scikit-image's own float32 arithmetic on the float32 arrays", () => {
      const f = c.float32Input;
      expect(Math.abs(psnr(ref, test, c.dataRange) - f.psnr)).toBeLessThan(1e-3);
      expect(Math.abs(ssim(ref, test, { dataRange: c.dataRange }) - f.ssimWang)).toBeLessThan(1e-3);
      const s = ssim(ref, test, { dataRange: c.dataRange, variant: "fastmri" });
      expect(Math.abs(s - f.ssimFastmri)).toBeLessThan(1e-3);
    });
  });
});

/**
 * SSIM exactly as scikit-image computes it: full-size 2-D filtering with scipy's mode='reflect'
 * (half-sample symmetric: d c b a | a b c d | d c b a), then crop (window - 1) / 2 per side.
 * Written independently of src/metrics to check the cropped-only, separable computation.
 */
function ssimMapScipy(ref: Image2D, test: Image2D, dataRange: number, variant: SsimVariant): number[][] {
  const { rows, cols } = ref;
  let w: number[];
  if (variant === "fastmri") w = Array<number>(7).fill(1 / 7);
  else {
    const g = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / (2 * 1.5 ** 2)));
    const s = g.reduce((a, b) => a + b, 0);
    w = g.map((v) => v / s);
  }
  const r = (w.length - 1) / 2;
  const reflect = (i: number, n: number) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);
  const at = (im: Image2D, i: number, j: number) => im.data[reflect(i, rows) * cols + reflect(j, cols)];
  const np = w.length ** 2;
  const covNorm = variant === "fastmri" ? np / (np - 1) : 1;
  const c1 = (0.01 * dataRange) ** 2,
    c2 = (0.03 * dataRange) ** 2;
  const out: number[][] = [];
  for (let i = 0; i < rows; i++) {
    const row: number[] = [];
    for (let j = 0; j < cols; j++) {
      let ux = 0,
        uy = 0,
        uxx = 0,
        uyy = 0,
        uxy = 0;
      for (let a = -r; a <= r; a++)
        for (let b = -r; b <= r; b++) {
          const wt = w[a + r] * w[b + r],
            x = at(ref, i + a, j + b),
            y = at(test, i + a, j + b);
          ux += wt * x;
          uy += wt * y;
          uxx += wt * x * x;
          uyy += wt * y * y;
          uxy += wt * x * y;
        }
      const vx = covNorm * (uxx - ux * ux),
        vy = covNorm * (uyy - uy * uy),
        vxy = covNorm * (uxy - ux * uy);
      row.push(((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2)));
    }
    out.push(row);
  }
  return out.slice(r, rows - r).map((row) => row.slice(r, cols - r));
}

describe("ssimMap", () => {
  const rows = 23,
    cols = 31;
  const a = { rows, cols, data: randomVector(rows * cols, 1) };
  const b = { rows, cols, data: a.data.map((v, i) => v + 0.3 * randomVector(rows * cols, 2)[i]) };
  it.each(["wang", "fastmri"] as const)("%s equals full reflect-mode filtering then crop", (variant) => {
    const m = ssimMap(a, b, { dataRange: 1, variant });
    const pad = variant === "wang" ? 5 : 3;
    expect(m.pad).toBe(pad);
    expect([m.rows, m.cols]).toEqual([rows - 2 * pad, cols - 2 * pad]);
    expect(m.map.length).toBe(m.rows * m.cols);
    const naive = ssimMapScipy(a, b, 1, variant);
    let worst = 0;
    for (let i = 0; i < m.rows; i++)
      for (let j = 0; j < m.cols; j++) worst = Math.max(worst, Math.abs(m.map[i * m.cols + j] - naive[i][j]));
    expect(worst).toBeLessThan(1e-12);
    const mean = m.map.reduce((s, v) => s + v, 0) / m.map.length;
    expect(ssim(a, b, { dataRange: 1, variant })).toBe(mean);
  });
});

describe("metric properties", () => {
  const a = image(20, 24, (r, c) => Math.sin(r / 3) + Math.cos(c / 4));
  const b = image(20, 24, (r, c) => Math.sin(r / 3) + Math.cos(c / 4) + 0.1 * Math.sin(r * c));
  const worse = image(20, 24, (r, c) => b.data[r * 24 + c] + 0.3 * Math.cos(r + c));
  const scaled = (im: Image2D, k: number, shift = 0): Image2D => ({
    ...im,
    data: im.data.map((v) => k * v + shift),
  });

  it("identical images: SSIM 1, PSNR infinite, NMSE and MSE 0", () => {
    for (const variant of ["wang", "fastmri"] as const) {
      expect(ssim(a, a, { dataRange: 2, variant })).toBeCloseTo(1, 12);
      expect(ssimMap(a, a, { dataRange: 2, variant }).map.every((v) => Math.abs(v - 1) < 1e-12)).toBe(true);
    }
    expect(psnr(a, a, 2)).toBe(Infinity);
    expect(nmse(a, a)).toBe(0);
    expect(mse(a, a)).toBe(0);
    const zero = image(12, 12, () => 0);
    expect(ssim(zero, zero, { dataRange: 1 })).toBe(1);
    expect(nmse(zero, zero)).toBe(0);
    expect(
      nmse(
        zero,
        image(12, 12, () => 1),
      ),
    ).toBe(Infinity);
  });

  it("SSIM, PSNR and MSE are symmetric; NMSE is normalised by the reference", () => {
    for (const variant of ["wang", "fastmri"] as const)
      expect(ssim(a, b, { dataRange: 2, variant })).toBe(ssim(b, a, { dataRange: 2, variant }));
    expect(psnr(a, b, 2)).toBe(psnr(b, a, 2));
    expect(mse(a, b)).toBe(mse(b, a));
    const big = scaled(a, 3);
    expect(nmse(a, big)).toBeCloseTo(4, 6);
    expect(nmse(big, a)).toBeCloseTo(4 / 9, 6);
  });

  it("a worse image scores lower; SSIM stays at most 1", () => {
    for (const variant of ["wang", "fastmri"] as const) {
      expect(ssim(a, worse, { dataRange: 2, variant })).toBeLessThan(ssim(a, b, { dataRange: 2, variant }));
      expect(ssim(a, b, { dataRange: 2, variant })).toBeLessThan(1);
    }
    expect(psnr(a, worse, 2)).toBeLessThan(psnr(a, b, 2));
    expect(nmse(a, worse)).toBeGreaterThan(nmse(a, b));
  });

  it("scaling images and data range together changes nothing; PSNR ignores a common offset", () => {
    const k = 1000;
    for (const variant of ["wang", "fastmri"] as const)
      expect(ssim(scaled(a, k), scaled(b, k), { dataRange: 2 * k, variant })).toBeCloseTo(
        ssim(a, b, { dataRange: 2, variant }),
        6,
      );
    expect(psnr(scaled(a, k), scaled(b, k), 2 * k)).toBeCloseTo(psnr(a, b, 2), 4);
    expect(nmse(scaled(a, k), scaled(b, k))).toBeCloseTo(nmse(a, b), 8);
    expect(psnr(scaled(a, 1, 500), scaled(b, 1, 500), 2)).toBeCloseTo(psnr(a, b, 2), 2);
    expect(psnr(a, b, 4) - psnr(a, b, 2)).toBeCloseTo(20 * Math.log10(2), 10);
    expect(psnr(a, b, 2)).toBeCloseTo(10 * Math.log10(4 / mse(a, b)), 10);
  });

  it("rejects mismatched sizes", () => {
    const small = image(20, 20, () => 0);
    const transposed = image(24, 20, () => 0);
    for (const other of [small, transposed]) {
      expect(() => psnr(a, other, 1)).toThrow(RangeError);
      expect(() => psnr(a, other, 1)).toThrow(/psnr: images differ in size: reference 20x24, test/);
      expect(() => nmse(a, other)).toThrow(/nmse: images differ in size/);
      expect(() => mse(other, a)).toThrow(/mse: images differ in size/);
      expect(() => ssim(a, other, { dataRange: 1 })).toThrow(/ssim: images differ in size/);
      expect(() => ssimMap(a, other, { dataRange: 1, variant: "fastmri" })).toThrow(RangeError);
    }
    const short = { rows: 20, cols: 24, data: new Float32Array(479) };
    expect(() => nmse(a, short)).toThrow(/test image has 479 values, expected 20x24 = 480/);
    expect(() => psnr({ rows: 0, cols: 0, data: new Float32Array(0) }, a, 1)).toThrow(/invalid size/);
  });

  it("rejects a data range that is not positive and finite", () => {
    for (const r of [0, -1, NaN, Infinity]) {
      expect(() => psnr(a, b, r)).toThrow(RangeError);
      expect(() => psnr(a, b, r)).toThrow(/psnr needs a positive, finite data range/);
      expect(() => ssim(a, b, { dataRange: r })).toThrow(/ssim needs a positive, finite data range/);
    }
  });

  it("refuses images smaller than the window, as scikit-image does", () => {
    const tiny = image(10, 12, (r, c) => r + c);
    expect(() => ssim(tiny, tiny, { dataRange: 1 })).toThrow(/at least 11x11, got 10x12/);
    expect(ssim(tiny, tiny, { dataRange: 1, variant: "fastmri" })).toBeCloseTo(1, 12);
    const tinier = image(6, 12, (r, c) => r + c);
    expect(() => ssim(tinier, tinier, { dataRange: 1, variant: "fastmri" })).toThrow(/at least 7x7/);
    expect(() => ssim(a, b, { dataRange: 1, variant: "gauss" as SsimVariant })).toThrow(/unknown variant/);
  });
});

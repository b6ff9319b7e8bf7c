import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { nmse, psnr, ssim } from "../../src/metrics/index.js";

const dir = new URL("../fixtures/metrics/", import.meta.url);
const reference = JSON.parse(readFileSync(new URL("reference.json", dir), "utf8")) as {
  skimage: string;
  cases: {
    name: string;
    rows: number;
    cols: number;
    offset: number;
    dataRange: number;
    psnr: number;
    ssimWang: number;
    ssimFastmri: number;
    nmse: number;
  }[];
};
const blob = readFileSync(new URL("images.bin", dir));
const floats = new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));

describe(`metrics against scikit-image ${reference.skimage} (committed reference numbers)`, () => {
  it.each(reference.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const n = c.rows * c.cols;
    const ref = { rows: c.rows, cols: c.cols, data: floats.subarray(c.offset, c.offset + n) };
    const test = { rows: c.rows, cols: c.cols, data: floats.subarray(c.offset + n, c.offset + 2 * n) };
    expect(Math.abs(psnr(ref, test, c.dataRange) - c.psnr)).toBeLessThan(1e-3);
    expect(Math.abs(ssim(ref, test, { dataRange: c.dataRange }) - c.ssimWang)).toBeLessThan(1e-3);
    expect(
      Math.abs(ssim(ref, test, { dataRange: c.dataRange, variant: "fastmri" }) - c.ssimFastmri),
    ).toBeLessThan(1e-3);
    expect(Math.abs(nmse(ref, test) - c.nmse) / c.nmse).toBeLessThan(1e-3);
  });
});

describe("metric properties", () => {
  const im = (rows: number, cols: number, f: (r: number, c: number) => number) => ({
    rows,
    cols,
    data: Float32Array.from({ length: rows * cols }, (_, i) => f(Math.floor(i / cols), i % cols)),
  });
  const a = im(20, 24, (r, c) => Math.sin(r / 3) + Math.cos(c / 4));
  const b = im(20, 24, (r, c) => Math.sin(r / 3) + Math.cos(c / 4) + 0.1 * Math.sin(r * c));
  it("identical images: SSIM 1, PSNR infinite, NMSE 0", () => {
    expect(ssim(a, a, { dataRange: 2 })).toBeCloseTo(1, 10);
    expect(ssim(a, a, { dataRange: 2, variant: "fastmri" })).toBeCloseTo(1, 10);
    expect(psnr(a, a, 2)).toBe(Infinity);
    expect(nmse(a, a)).toBe(0);
  });
  it("SSIM is symmetric and a worse image scores lower", () => {
    expect(ssim(a, b, { dataRange: 2 })).toBeCloseTo(ssim(b, a, { dataRange: 2 }), 10);
    const c = im(20, 24, (r, col) => b.data[r * 24 + col] + 0.3 * Math.cos(r + col));
    expect(ssim(a, c, { dataRange: 2 })).toBeLessThan(ssim(a, b, { dataRange: 2 }));
    expect(psnr(a, c, 2)).toBeLessThan(psnr(a, b, 2));
  });
  it("rejects mismatched sizes and a non-positive data range", () => {
    const small = im(20, 20, () => 0);
    expect(() => psnr(a, small, 1)).toThrow(/differ in size/);
    expect(() => ssim(a, b, { dataRange: 0 })).toThrow(/data range/);
    expect(() => psnr(a, b, -1)).toThrow(/data range/);
  });
});

import { describe, expect, it } from "vitest";
import {
  FBP_FILTERS,
  ParallelBeamProjector,
  addSinogramGaussianNoise,
  addSinogramPoissonNoise,
  equispacedAngles,
  fbp,
  sparseViewIndices,
} from "../../operators/ct.js";
import { adjointMismatch } from "../../operators/linear-operator.js";
import { sheppLogan } from "../../phantoms/ellipses.js";
import { psnr } from "../../src/metrics/index.js";
import { randomVector } from "../helpers.js";
import { referenceAdjoint, referenceForward } from "./joseph-reference.js";

describe("parallel-beam projector", () => {
  it.each([
    [31, 1, undefined],
    [64, 23, undefined],
    [100, 60, undefined],
    [64, 180, undefined],
    [48, 17, 40],
    [37, 9, 80],
  ])("adjoint is the exact transpose: N=%i, %i views, detectors %s", (n, views, detectors) => {
    const op = new ParallelBeamProjector({ size: n, views, detectors });
    const d = op.detectors;
    expect(d).toBe(detectors ?? Math.ceil(Math.SQRT2 * n));
    for (const seed of [1, 2]) {
      const x = randomVector(n * n, seed);
      const y = randomVector(views * d, seed + 50);
      expect(adjointMismatch(op, x, y)).toBeLessThan(1e-5);
    }
  });

  it("angles are k pi / V over [0, pi) without endpoint; sparse subsets come from the full set", () => {
    const a = equispacedAngles(4);
    expect(Array.from(a)).toEqual([0, Math.PI / 4, Math.PI / 2, (3 * Math.PI) / 4]);
    const idx = sparseViewIndices(180, 23);
    expect(idx.length).toBe(23);
    expect(new Set(idx).size).toBe(23);
    const full = new ParallelBeamProjector({ size: 32, views: 180 });
    const sub = full.subset(idx);
    const x = randomVector(32 * 32, 3);
    const ys = sub.forward(x),
      yf = full.forward(x);
    idx.forEach((v, k) => {
      for (let j = 0; j < full.detectors; j++)
        expect(ys[k * full.detectors + j]).toBeCloseTo(yf[v * full.detectors + j], 5);
    });
  });

  it("projects a disc to its chord lengths at every angle", () => {
    const n = 128,
      radius = 40;
    const c0 = (n - 1) / 2;
    const disc = new Float32Array(n * n);
    for (let r = 0; r < n; r++)
      for (let c = 0; c < n; c++) if ((r - c0) ** 2 + (c - c0) ** 2 <= radius ** 2) disc[r * n + c] = 1;
    const op = new ParallelBeamProjector({ size: n, views: 12 });
    const s = op.forward(disc);
    const t0 = (op.detectors - 1) / 2;
    for (let v = 0; v < 12; v++)
      for (const j of [0, 10, 25, 35].map((t) => Math.round(t0 + t))) {
        const t = j - t0;
        const want = 2 * Math.sqrt(radius ** 2 - t ** 2);
        expect(Math.abs(s[v * op.detectors + j] - want)).toBeLessThan(1);
      }
  });

  it("conserves mass: each view of an image sums to the image's sum", () => {
    const n = 64;
    const x = sheppLogan(n);
    const total = x.reduce((a, b) => a + b, 0);
    const op = new ParallelBeamProjector({ size: n, views: 30 });
    const s = op.forward(x);
    for (let v = 0; v < 30; v++) {
      let sum = 0;
      for (let j = 0; j < op.detectors; j++) sum += s[v * op.detectors + j];
      expect(Math.abs(sum / total - 1)).toBeLessThan(0.01);
    }
  });
});

describe("filtered backprojection", () => {
  const n = 256;
  const image = { rows: n, cols: n, data: sheppLogan(n) };
  const op = new ParallelBeamProjector({ size: n, views: 180 });
  const sino = op.forward(image.data);
  it("full-view (180) ramp FBP of the 256 Shepp-Logan reaches PSNR >= 30 dB", () => {
    const rec = { rows: n, cols: n, data: fbp(sino, op, { filter: "ramp" }) };
    expect(psnr(image, rec, 1)).toBeGreaterThanOrEqual(30);
  });
  it("every filter keeps the intensity scale (mean within 2%) and the smoother filters trade PSNR", () => {
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const results = FBP_FILTERS.map((filter) => fbp(sino, op, { filter }));
    for (const r of results) expect(Math.abs(mean(r) / mean(image.data) - 1)).toBeLessThan(0.02);
    const p = results.map((data) => psnr(image, { rows: n, cols: n, data }, 1));
    expect(p[0]).toBeGreaterThan(p[4]);
    expect(Math.min(...p)).toBeGreaterThan(25);
  });
  it("rejects a sinogram of the wrong size", () => {
    expect(() => fbp(new Float32Array(10), op)).toThrow(/sinogram has 10 values/);
  });
});

describe("sinogram noise", () => {
  const sino = new Float32Array(20000).fill(50);
  it("is seeded", () => {
    expect(addSinogramGaussianNoise(sino, 0.1, 3)).toEqual(addSinogramGaussianNoise(sino, 0.1, 3));
    expect(addSinogramPoissonNoise(sino, { I0: 1e4, seed: 3 })).toEqual(
      addSinogramPoissonNoise(sino, { I0: 1e4, seed: 3 }),
    );
    expect(addSinogramPoissonNoise(sino, { I0: 1e4, seed: 3 })).not.toEqual(
      addSinogramPoissonNoise(sino, { I0: 1e4, seed: 4 }),
    );
  });
  it("Poisson noise has the transmission variance exp(s p) / (I0 s^2)", () => {
    const s = 0.0195,
      I0 = 1e4;
    const noisy = addSinogramPoissonNoise(sino, { I0, seed: 1 });
    const m = noisy.reduce((a, b) => a + b, 0) / noisy.length;
    const v = noisy.reduce((a, b) => a + (b - m) ** 2, 0) / noisy.length;
    const want = Math.exp(s * 50) / (I0 * s * s);
    expect(Math.abs(m - 50)).toBeLessThan(0.2);
    expect(Math.abs(v / want - 1)).toBeLessThan(0.1);
  });
  it("Gaussian noise has the stated sigma", () => {
    const noisy = addSinogramGaussianNoise(sino, 0.5, 2);
    const sd = Math.sqrt(noisy.reduce((a, b) => a + (b - 50) ** 2, 0) / noisy.length);
    expect(sd).toBeCloseTo(0.5, 1);
  });
});

describe("projector against the reference Joseph loop", () => {
  const relMax = (a: Float32Array, b: Float32Array) => {
    let diff = 0,
      scale = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    return diff / scale;
  };
  it.each([
    [31, 1, undefined],
    [64, 4, undefined],
    [64, 23, undefined],
    [100, 60, undefined],
    [65, 180, undefined],
    [48, 17, 40],
    [37, 9, 80],
  ])("forward and adjoint equal the reference's: N=%i, %i views, detectors %s", (n, views, detectors) => {
    const op = new ParallelBeamProjector({ size: n, views, detectors });
    const x = randomVector(n * n, 7);
    const y = randomVector(views * op.detectors, 8);
    // A reused output buffer holding garbage is overwritten, not added to.
    const out = randomVector(views * op.detectors, 9);
    expect(relMax(op.forward(x, out), referenceForward(op, x))).toBeLessThan(1e-6);
    expect(relMax(op.adjoint(y, randomVector(n * n, 10)), referenceAdjoint(op, y))).toBeLessThan(1e-6);
    // Twice: the cached ray plan gives the same result.
    expect(relMax(op.forward(x), referenceForward(op, x))).toBeLessThan(1e-6);
  });
  it("equals the reference at 256 x 256 with 60 views on a phantom and its sinogram", () => {
    const op = new ParallelBeamProjector({ size: 256, views: 60 });
    const x = sheppLogan(256);
    const y = referenceForward(op, x);
    expect(relMax(op.forward(x), y)).toBeLessThan(1e-6);
    expect(relMax(op.adjoint(y), referenceAdjoint(op, y))).toBeLessThan(1e-6);
  });
});

import { describe, expect, it } from "vitest";
import { adjointMismatch } from "../../operators/linear-operator.js";
import {
  MASK_KINDS,
  centerLines,
  lineMask,
  realisedAcceleration,
  samplingMask,
} from "../../operators/masks.js";
import { MriCartesianOperator, addKspaceNoise } from "../../operators/mri.js";
import { randomVector } from "../helpers.js";

describe("sampling masks", () => {
  it.each(MASK_KINDS.flatMap((kind) => [4, 8].map((accel) => [kind, accel] as const)))(
    "%s at %ix realises the requested acceleration within 5%%",
    (kind, acceleration) => {
      for (const [rows, cols] of [
        [256, 256],
        [320, 218],
        [255, 191],
      ]) {
        for (const seed of [0, 1, 2]) {
          const centerFraction = acceleration === 4 ? 0.08 : 0.04;
          const m = samplingMask(rows, cols, { kind, acceleration, centerFraction, seed });
          expect(Math.abs(realisedAcceleration(m) / acceleration - 1)).toBeLessThan(0.05);
        }
      }
    },
  );

  it.each(["random", "equispaced"] as const)("%s keeps the fastMRI centre lines", (kind) => {
    for (const cols of [256, 218, 31]) {
      const line = lineMask(kind, cols, { acceleration: 4, centerFraction: 0.08, seed: 3 });
      const { start, count } = centerLines(cols, 0.08);
      expect(count).toBe(Math.round(cols * 0.08));
      expect(start).toBe(Math.floor((cols - count + 1) / 2));
      for (let c = start; c < start + count; c++) expect(line[c]).toBe(1);
      if (count > 0) expect(line[Math.floor(cols / 2)]).toBe(1);
    }
  });

  it("vd2d samples the k-space centre fully", () => {
    const m = samplingMask(128, 128, { kind: "vd2d", acceleration: 6, centerFraction: 0.08, seed: 1 });
    for (let dr = -3; dr <= 3; dr++)
      for (let dc = -3; dc <= 3; dc++) expect(m[(64 + dr) * 128 + 64 + dc]).toBe(1);
  });

  it.each(MASK_KINDS)("%s: same seed gives the same mask, another seed another", (kind) => {
    const spec = { kind, acceleration: 4, centerFraction: 0.08 };
    const a = samplingMask(96, 96, { ...spec, seed: 11 });
    const b = samplingMask(96, 96, { ...spec, seed: 11 });
    const c = samplingMask(96, 96, { ...spec, seed: 12 });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    if (kind !== "equispaced") expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it("rejects impossible parameters", () => {
    expect(() =>
      samplingMask(8, 8, { kind: "random", acceleration: 0.5, centerFraction: 0.1, seed: 0 }),
    ).toThrow(/acceleration/);
    expect(() => samplingMask(8, 8, { kind: "random", acceleration: 4, centerFraction: 2, seed: 0 })).toThrow(
      /center fraction/,
    );
  });
});

describe("MRI Cartesian operator A = M F", () => {
  const sizes = [
    [64, 64],
    [63, 65],
    [40, 218],
    [33, 33],
  ];
  it.each(MASK_KINDS)(
    "passes the dot-product adjoint test with a %s mask (odd, even, non-power-of-two)",
    (kind) => {
      for (const [rows, cols] of sizes) {
        const mask = samplingMask(rows, cols, { kind, acceleration: 4, centerFraction: 0.08, seed: 5 });
        const op = new MriCartesianOperator(rows, cols, mask);
        for (const seed of [1, 2]) {
          const x = randomVector(2 * rows * cols, seed);
          const y = randomVector(2 * rows * cols, seed + 100);
          expect(adjointMismatch(op, x, y)).toBeLessThan(1e-5);
        }
      }
    },
  );

  it("normal operator equals A^H A and is a projection for binary masks", () => {
    const mask = samplingMask(32, 48, { kind: "random", acceleration: 3, centerFraction: 0.1, seed: 2 });
    const op = new MriCartesianOperator(32, 48, mask);
    const x = randomVector(2 * 32 * 48, 9);
    const n1 = op.normal(x);
    const n2 = op.adjoint(op.forward(x));
    const n3 = op.normal(n1);
    for (let i = 0; i < x.length; i++) {
      expect(n1[i]).toBeCloseTo(n2[i], 5);
      expect(n3[i]).toBeCloseTo(n1[i], 5);
    }
  });

  it("zeroes unsampled k-space and keeps sampled k-space of the full FFT", () => {
    const mask = samplingMask(16, 16, { kind: "equispaced", acceleration: 4, centerFraction: 0.25, seed: 0 });
    const op = new MriCartesianOperator(16, 16, mask);
    const full = new MriCartesianOperator(16, 16, new Uint8Array(256).fill(1));
    const x = randomVector(512, 4);
    const y = op.forward(x);
    const k = full.forward(x);
    for (let i = 0; i < 256; i++) {
      expect(y[2 * i]).toBeCloseTo(mask[i] ? k[2 * i] : 0, 6);
      expect(y[2 * i + 1]).toBeCloseTo(mask[i] ? k[2 * i + 1] : 0, 6);
    }
  });

  it("adds seeded complex noise of the stated sigma only where sampled", () => {
    const mask = samplingMask(64, 64, { kind: "random", acceleration: 2, centerFraction: 0.1, seed: 0 });
    const k = new Float32Array(2 * 64 * 64);
    const a = addKspaceNoise(k, mask, 0.5, 42);
    const b = addKspaceNoise(k, mask, 0.5, 42);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    let ss = 0,
      n = 0;
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) {
        expect(a[2 * i]).toBe(0);
        continue;
      }
      ss += a[2 * i] ** 2 + a[2 * i + 1] ** 2;
      n += 2;
    }
    expect(Math.sqrt(ss / n)).toBeCloseTo(0.5, 1);
  });
});

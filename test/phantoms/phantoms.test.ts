import { describe, expect, it } from "vitest";
import { PHANTOM_KINDS, generatePhantom, sheppLogan } from "../../phantoms/index.js";

describe("modified Shepp-Logan", () => {
  it.each([64, 127, 256])("has the standard values and layout at %i", (n) => {
    const p = sheppLogan(n);
    const at = (x: number, y: number) => {
      // (x, y) in [-1, 1], y up, as MATLAB's phantom.
      const h = (n - 1) / 2;
      return p[Math.round(h - y * h) * n + Math.round(x * h + h)];
    };
    expect(at(0, 0.95)).toBeCloseTo(0, 5); // outside
    expect(at(0, 0.9)).toBeCloseTo(1, 1); // skull
    expect(at(0, -0.3)).toBeCloseTo(0.2, 5); // brain
    expect(at(0.22, 0)).toBeCloseTo(0, 5); // right dark ellipse
    expect(at(-0.22, 0)).toBeCloseTo(0, 5); // left dark ellipse
    expect(at(0, 0.35)).toBeCloseTo(0.3, 5); // upper ellipse
    expect(Math.max(...p)).toBeLessThanOrEqual(1.0001);
    expect(Math.min(...p)).toBeGreaterThanOrEqual(-1e-6);
  });
});

describe("phantom generators", () => {
  it.each(PHANTOM_KINDS)("%s is seeded: same seed same bytes, another seed another image", (kind) => {
    const a = generatePhantom(kind, 96, 5);
    const b = generatePhantom(kind, 96, 5);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    if (kind !== "shepp-logan") {
      const c = generatePhantom(kind, 96, 6);
      expect(Buffer.from(a.data.buffer).equals(Buffer.from(c.data.buffer))).toBe(false);
    }
    expect(a.data.length).toBe(96 * 96);
    expect(a.data.every(Number.isFinite)).toBe(true);
  });

  it("ct-body is in HU with air, soft tissue and bone in realistic proportions", () => {
    for (let seed = 0; seed < 6; seed++) {
      const p = generatePhantom("ct-body", 128, seed);
      expect(p.units).toBe("HU");
      const frac = (lo: number, hi: number) => p.data.filter((v) => v >= lo && v < hi).length / p.data.length;
      expect(Math.min(...p.data)).toBeGreaterThanOrEqual(-1024);
      expect(Math.max(...p.data)).toBeLessThanOrEqual(3000);
      expect(frac(-1001, -950)).toBeGreaterThan(0.1); // air around the body
      expect(frac(-150, 100)).toBeGreaterThan(0.15); // fat and soft tissue
      expect(frac(300, 3000)).toBeGreaterThan(0.001); // bone
    }
  });

  it("brain has CSF, grey and white matter in [0, 1]", () => {
    for (let seed = 0; seed < 4; seed++) {
      const p = generatePhantom("brain", 128, seed);
      const frac = (lo: number, hi: number) => p.data.filter((v) => v >= lo && v < hi).length / p.data.length;
      expect(Math.min(...p.data)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...p.data)).toBeLessThanOrEqual(1);
      expect(frac(0.05, 0.3)).toBeGreaterThan(0.01); // CSF (and skull)
      expect(frac(0.38, 0.62)).toBeGreaterThan(0.05); // grey matter
      expect(frac(0.65, 0.95)).toBeGreaterThan(0.1); // white matter and scalp
    }
  });

  it("ellipses stay in [0, 1] inside the unit disc", () => {
    const p = generatePhantom("ellipses", 64, 3);
    expect(Math.min(...p.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...p.data)).toBeLessThanOrEqual(1);
    expect(p.data[0]).toBe(0);
  });
});

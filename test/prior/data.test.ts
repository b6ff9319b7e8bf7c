import { describe, expect, it } from "vitest";
import { createRng } from "../../operators/random.js";
import { makeVolume } from "../../src/image/volume.js";
import {
  makeBatch,
  parseAugmentations,
  PSEUDO_CT,
  slicesAlong,
  toAttenuation,
  type Augmentation,
  type TrainingSlice,
} from "../../src/prior/data.js";
import { pseudoCt } from "../../src/recon/evaluate.js";

/** An n x n slice with a distinct value at every pixel (so any rotation or flip is visible). */
const ramp = (n: number): TrainingSlice => ({
  rows: n,
  cols: n,
  data: Float32Array.from({ length: n * n }, (_, i) => 1 + i),
  hu: false,
});

function batch(slices: TrainingSlice[], augment: Augmentation[], seed: number, s: number, b = 4) {
  const d = makeBatch(
    { modality: "ct", slices: slices.map((x) => ({ ...x, hu: true })), augment },
    s,
    b,
    createRng(seed),
  );
  return Array.from({ length: b }, (_, k) => d.slice(k * s * s, (k + 1) * s * s));
}

/** The eight rotations and flips of a square image. */
function dihedral(x: Float32Array, n: number): Float32Array[] {
  const rot = (a: Float32Array) =>
    Float32Array.from({ length: n * n }, (_, i) => a[(n - 1 - (i % n)) * n + Math.floor(i / n)]);
  const flip = (a: Float32Array) =>
    Float32Array.from({ length: n * n }, (_, i) => a[Math.floor(i / n) * n + n - 1 - (i % n)]);
  const out: Float32Array[] = [];
  let a = x;
  for (let k = 0; k < 4; k++, a = rot(a)) out.push(a, flip(a));
  return out;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe("training slices", () => {
  it("takes axial, coronal and sagittal views with the right voxels, and drops empty ones", () => {
    // [slices 8, rows 9, cols 10], value = 1000 k + 10 r + c + 1, row 8 all zero.
    const [S, R, C] = [8, 9, 10];
    const at = (k: number, r: number, c: number) => (r === 8 ? 0 : 1000 * k + 10 * r + c + 1);
    const data = Float32Array.from({ length: S * R * C }, (_, i) =>
      at(Math.floor(i / (R * C)), Math.floor(i / C) % R, i % C),
    );
    const v = makeVolume(S, R, C, data);
    const ax = slicesAlong(v, "axial");
    expect(ax.map((s) => [s.rows, s.cols])).toEqual(Array(S).fill([R, C]));
    expect(ax[3].data[2 * C + 7]).toBe(at(3, 2, 7));
    const cor = slicesAlong(v, "coronal"); // row 8 is empty: dropped
    expect(cor.map((s) => [s.rows, s.cols])).toEqual(Array(R - 1).fill([S, C]));
    expect(cor[5].data[4 * C + 6]).toBe(at(4, 5, 6));
    const sag = slicesAlong(v, "sagittal");
    expect(sag.map((s) => [s.rows, s.cols])).toEqual(Array(C).fill([S, R]));
    expect(sag[6].data[4 * R + 5]).toBe(at(4, 5, 6));
  });
});

describe("augmentation", () => {
  it("is exact without augmentation: a slice of the crop's size comes out unchanged", () => {
    for (const x of batch([ramp(16)], [], 1, 16)) expect(maxDiff(x, ramp(16).data)).toBe(0);
  });

  it("rot90 and flip give only the eight rotations and flips, and several of them", () => {
    const seen = new Set<number>();
    const d8 = dihedral(ramp(16).data, 16);
    for (const x of batch([ramp(16)], ["rot90", "flip"], 2, 16, 24)) {
      const k = d8.findIndex((y) => maxDiff(x, y) === 0);
      expect(k).toBeGreaterThanOrEqual(0);
      seen.add(k);
    }
    expect(seen.size).toBeGreaterThanOrEqual(5);
  });

  it("is seeded: the same seed gives the same batch, another seed another", () => {
    const all: Augmentation[] = ["flip", "rot90", "rotate", "scale", "whole"];
    const a = batch([ramp(40)], all, 7, 16, 8).flatMap((x) => Array.from(x));
    const b = batch([ramp(40)], all, 7, 16, 8).flatMap((x) => Array.from(x));
    const c = batch([ramp(40)], all, 8, 16, 8).flatMap((x) => Array.from(x));
    expect(a).toEqual(b);
    expect(maxDiff(a, c)).toBeGreaterThan(0);
  });

  it("'whole' fits the whole slice into the crop (its four corners reach the crop's edges)", () => {
    // A 64 x 64 slice of ones: a whole view at crop 16 is non-zero everywhere inside, while a
    // plain crop of a 64 x 64 ramp never sees both its smallest and largest values.
    const ones: TrainingSlice = { rows: 64, cols: 64, data: new Float32Array(64 * 64).fill(1), hu: false };
    let wholeViews = 0;
    for (const x of batch([{ ...ramp(64) }], ["whole"], 3, 16, 32)) {
      const lo = Math.min(...x),
        hi = Math.max(...x);
      if (lo < 200 && hi > 64 * 64 - 200) wholeViews++;
    }
    expect(wholeViews).toBeGreaterThan(0);
    expect(wholeViews).toBeLessThan(32);
    for (const x of batch([ones], ["whole"], 3, 16, 8))
      expect(Math.min(...x.subarray(17, 30))).toBeGreaterThan(0.5);
  });

  it("'blur' smooths some crops (less variation, same mean of a constant) and leaves the others exact", () => {
    const board: TrainingSlice = {
      rows: 16,
      cols: 16,
      data: Float32Array.from({ length: 256 }, (_, i) => ((i >> 4) + i) % 2),
      hu: true,
    };
    const variation = (x: Float32Array) => {
      let t = 0;
      for (let i = 1; i < x.length; i++) if (i % 16) t += Math.abs(x[i] - x[i - 1]);
      return t;
    };
    let blurred = 0;
    for (const x of batch([board], ["blur"], 5, 16, 40)) {
      if (maxDiff(x, board.data) === 0) continue;
      blurred++;
      expect(variation(x)).toBeLessThan(0.8 * variation(board.data));
      expect(Math.min(...x)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...x)).toBeLessThanOrEqual(1);
    }
    expect(blurred).toBeGreaterThan(3);
    expect(blurred).toBeLessThan(30);
    const ones: TrainingSlice = { rows: 16, cols: 16, data: new Float32Array(256).fill(1), hu: true };
    for (const x of batch([ones], ["blur"], 6, 16, 20)) expect(maxDiff(x, ones.data)).toBeLessThan(1e-5);
    expect(parseAugmentations("default", "mri")).not.toContain("blur");
  });

  it("MRI intensity transforms keep zero background at zero and values non-negative", () => {
    const brain: TrainingSlice = {
      ...ramp(16),
      data: ramp(16).data.map((v, i) => (i % 16 < 3 ? 0 : v / 256)),
    };
    const d = makeBatch(
      { modality: "mri", slices: [brain], augment: ["gamma", "contrast", "invert"] },
      16,
      16,
      createRng(4),
    );
    for (let k = 0; k < 16; k++)
      for (let i = 0; i < 256; i++) {
        expect(d[k * 256 + i]).toBeGreaterThanOrEqual(0);
        if (i % 16 < 3) expect(d[k * 256 + i]).toBe(0);
      }
  });

  it("parses --augment per modality and refuses what does not apply", () => {
    expect(parseAugmentations(undefined, "mri")).toContain("invert");
    expect(parseAugmentations("default", "ct")).not.toContain("gamma");
    expect(parseAugmentations("none", "ct")).toEqual([]);
    expect(parseAugmentations("flip, rot90", "ct")).toEqual(["flip", "rot90"]);
    expect(() => parseAugmentations("invert", "ct")).toThrow(/invert applies to MRI priors only/);
    expect(() => parseAugmentations("flip,warp", "mri")).toThrow(/unknown augmentation 'warp'/);
  });
});

describe("MRI anatomy as attenuation", () => {
  it("maps air to -1000 HU and is monotone in intensity (the fixed pseudo-CT curve)", () => {
    const m = Float32Array.from({ length: 121 }, (_, i) => i / 100);
    const u = m.slice();
    toAttenuation(u, PSEUDO_CT);
    expect(u[0] * 2000 - 1000).toBeCloseTo(-1000, 3);
    for (let i = 1; i < u.length; i++) expect(u[i]).toBeGreaterThanOrEqual(u[i - 1]);
    expect(u[100] * 2000 - 1000).toBeCloseTo(PSEUDO_CT.soft, 3);
    expect(u[120] * 2000 - 1000).toBeCloseTo(PSEUDO_CT.bone, 3);
  });

  it("pseudoCt turns an MR volume into a CT one in HU", () => {
    const v = makeVolume(1, 16, 16, ramp(16).data, { modality: "MR" });
    const ct = pseudoCt(v);
    expect([ct.modality, ct.units]).toEqual(["CT", "HU"]);
    expect(Math.min(...ct.data)).toBeGreaterThanOrEqual(-1000);
    expect(Math.max(...ct.data)).toBeLessThanOrEqual(PSEUDO_CT.bone + 1e-3);
  });
});

/**
 * The operator-side helpers (after deepinv's physics): the cached norm, the data scale, the
 * pseudo-inverse, the l2 prox, the noise of an operator's measurements and the FBP filter names.
 */
import { describe, expect, it } from "vitest";
import { fbpFilter, ParallelBeamProjector } from "../../operators/ct.js";
import {
  applyNormal,
  cachedOperatorNorm,
  dot,
  norm2,
  operatorNorm,
  type LinearOperator,
} from "../../operators/linear-operator.js";
import { samplingMask } from "../../operators/masks.js";
import { MriCartesianOperator } from "../../operators/mri.js";
import { addNoise, gaussianSigma } from "../../operators/noise.js";
import { dataScale } from "../../operators/scale.js";
import { proxL2, pseudoInverse, realInputView } from "../../operators/solvers.js";
import { randomVector } from "../helpers.js";

const n = 16;
const mri = new MriCartesianOperator(
  n,
  n,
  samplingMask(n, n, { kind: "random", acceleration: 4, centerFraction: 0.08, seed: 1 }),
);
const ct = new ParallelBeamProjector({ size: n, views: 8 });

const residual = (a: Float32Array, b: Float32Array) =>
  norm2(a.map((v, i) => v - b[i])) / Math.max(norm2(b), 1e-30);

describe("operator helpers", () => {
  it("cachedOperatorNorm is the 20-iteration power iteration, computed once per operator", () => {
    const counted = { ...ct, calls: 0, forward: ct.forward.bind(ct), adjoint: ct.adjoint.bind(ct) };
    let calls = 0;
    counted.forward = (x, out) => (calls++, ct.forward(x, out));
    expect(cachedOperatorNorm(counted)).toBe(operatorNorm(ct, 20));
    const first = calls;
    expect(first).toBeGreaterThan(0);
    expect(cachedOperatorNorm(counted)).toBe(operatorNorm(ct, 20));
    expect(calls).toBe(first);
  });

  it("the data scale follows the intensity: scaling y by c scales it by c", () => {
    const y = ct.forward(randomVector(n * n, 3).map(Math.abs));
    const s = dataScale(ct, y);
    expect(s).toBeGreaterThan(0);
    expect(
      dataScale(
        ct,
        y.map((v) => 7 * v),
      ) / s,
    ).toBeCloseTo(7, 4);
    // No signal: scale 1, never 0 (callers divide by it).
    expect(dataScale(ct, new Float32Array(y.length))).toBe(1);
  });

  it("the pseudo-inverse of the MRI operator reproduces the measurements in one CG step", () => {
    // A^H A = F^H M F is a projection: one CG step is exact.
    const y = mri.forward(randomVector(2 * n * n, 5));
    expect(residual(mri.forward(pseudoInverse(mri, y, 1)), y)).toBeLessThan(1e-5);
    // Restricted to real images it is a least-squares fit, nearer with more steps.
    const op = realInputView(mri);
    const yr = op.forward(randomVector(n * n, 5));
    const fit = (k: number) => residual(op.forward(pseudoInverse(op, yr, k)), yr);
    expect(fit(20)).toBeLessThan(fit(1));
  });

  it("proxL2 solves (A^H A + mu I) x = A^H y + mu z; mu = 0 converges to a least-squares solution", () => {
    const y = ct.forward(randomVector(n * n, 6));
    const aty = ct.adjoint(y);
    const z = randomVector(n * n, 7);
    const mu = 0.5;
    const x = proxL2(ct, aty, z, mu, 200);
    const lhs = applyNormal(ct, x).map((v, i) => v + mu * x[i]);
    const rhs = aty.map((v, i) => v + mu * z[i]);
    expect(residual(lhs, rhs)).toBeLessThan(1e-4);
    const ls = proxL2(ct, aty, z, 0, 200);
    expect(residual(applyNormal(ct, ls), aty)).toBeLessThan(1e-3);
  });

  it("CG writes A x and A^H A x into the same two buffers every iteration (no allocation)", () => {
    const outs = {
      forward: new Set<Float32Array | undefined>(),
      adjoint: new Set<Float32Array | undefined>(),
    };
    const watched: LinearOperator = {
      name: ct.name,
      input: ct.input,
      output: ct.output,
      forward: (x, out) => (outs.forward.add(out), ct.forward(x, out)),
      adjoint: (y, out) => (outs.adjoint.add(out), ct.adjoint(y, out)),
    };
    const aty = ct.adjoint(ct.forward(randomVector(n * n, 11)));
    proxL2(watched, aty, randomVector(n * n, 12), 0.5, 6);
    for (const set of [outs.forward, outs.adjoint]) {
      expect(set.size).toBe(1);
      expect([...set][0]).toBeInstanceOf(Float32Array);
    }
  });

  it("CG gives the textbook iteration's floats exactly, with and without mu", () => {
    // Hestenes-Stiefel on (A^H A + mu I) x = b from x0, one allocation per product.
    const textbook = (b: Float32Array, x0: Float32Array, iterations: number, mu: number) => {
      const x = new Float32Array(x0);
      const normalPlus = (v: Float32Array) => applyNormal(ct, v).map((u, i) => u + mu * v[i]);
      const ax = normalPlus(x);
      const r = b.map((v, i) => v - ax[i]);
      const p = new Float32Array(r);
      let rr = dot(r, r);
      for (let k = 0; k < iterations; k++) {
        const ap = normalPlus(p);
        const alpha = rr / dot(p, ap);
        for (let i = 0; i < x.length; i++) {
          x[i] += alpha * p[i];
          r[i] -= alpha * ap[i];
        }
        const next = dot(r, r);
        const beta = next / rr;
        rr = next;
        for (let i = 0; i < p.length; i++) p[i] = r[i] + beta * p[i];
      }
      return x;
    };
    const aty = ct.adjoint(ct.forward(randomVector(n * n, 13)));
    const z = randomVector(n * n, 14);
    expect(proxL2(ct, aty, z, 0, 5)).toEqual(textbook(aty, z, 5, 0));
    const b = aty.map((v, i) => v + 0.5 * z[i]);
    expect(proxL2(ct, aty, z, 0.5, 5)).toEqual(textbook(b, z, 5, 0.5));
  });

  it("addNoise draws Gaussian noise on what the operator measures, reproducibly", () => {
    const y = mri.forward(randomVector(2 * n * n, 8));
    const noisy = addNoise(mri, y, { kind: "gaussian", sigma: 0.1 }, 4);
    expect(addNoise(mri, y, { kind: "gaussian", sigma: 0.1 }, 4)).toEqual(noisy);
    // Unsampled k-space stays zero; sampled positions change.
    for (let i = 0; i < n * n; i++)
      if (!mri.mask[i]) expect(Math.abs(noisy[2 * i]) + Math.abs(noisy[2 * i + 1])).toBe(0);
    expect(residual(noisy, y)).toBeGreaterThan(0);
    expect(addNoise(mri, y, { kind: "none" }, 4)).toEqual(y);
    const sino = ct.forward(randomVector(n * n, 9).map(Math.abs));
    expect(addNoise(ct, sino, { kind: "poisson", I0: 1e4 }, 2).every((v) => Number.isFinite(v))).toBe(true);
    expect(gaussianSigma({ kind: "gaussian", sigma: 0.3 })).toBe(0.3);
    expect(gaussianSigma({ kind: "poisson", I0: 1e4 })).toBe(0);
  });

  it("fbpFilter takes the known filter names and names them for another", () => {
    expect(fbpFilter("hann")).toBe("hann");
    expect(fbpFilter(undefined)).toBe("ramp");
    expect(() => fbpFilter("box")).toThrow(
      "unknown FBP filter 'box' (known: ramp, shepp-logan, cosine, hamming, hann)",
    );
  });
});

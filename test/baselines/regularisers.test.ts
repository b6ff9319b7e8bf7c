import { describe, expect, it } from "vitest";
import { dot, type LinearOperator } from "../../operators/linear-operator.js";
import { pdhg } from "../../src/baselines/pdhg.js";
import {
  finiteDifferences,
  proxSparsity,
  stationaryHaar,
  type SparsifyingTransform,
} from "../../src/baselines/regularisers.js";
import { randomVector } from "../helpers.js";

describe("sparsifying transforms", () => {
  const cases = [
    [16, 16, false],
    [13, 21, true],
    [40, 33, false],
  ] as const;
  it.each(cases)("TV and stationary Haar are exact transposes (%ix%i, complex %s)", (rows, cols, complex) => {
    const n = rows * cols * (complex ? 2 : 1);
    for (const t of [finiteDifferences(rows, cols, complex), stationaryHaar(rows, cols, complex, 3)]) {
      const x = randomVector(n, 1);
      const z = randomVector(t.length, 2);
      const wx = new Float32Array(t.length);
      const wtz = new Float32Array(n);
      t.forward(x, wx);
      t.adjoint(z, wtz);
      const a = dot(wx, z),
        b = dot(x, wtz);
      expect(Math.abs(a - b) / Math.abs(a)).toBeLessThan(1e-5);
    }
  });

  it("respects the stated norm bounds", () => {
    for (const t of [finiteDifferences(24, 24, false), stationaryHaar(24, 24, false, 4)]) {
      let x = randomVector(576, 3);
      const z = new Float32Array(t.length);
      let est = 0;
      for (let k = 0; k < 50; k++) {
        t.forward(x, z);
        const nx = Math.sqrt(dot(x, x));
        t.adjoint(z, x);
        est = Math.sqrt(dot(x, x)) / nx;
        x = x.map((v) => v / Math.sqrt(dot(x, x)));
      }
      expect(est).toBeLessThanOrEqual(t.normSquaredBound * 1.0001);
    }
  });

  it("the Haar detail bands vanish on a constant image", () => {
    const t = stationaryHaar(10, 14, false, 3);
    const z = new Float32Array(t.length);
    t.forward(new Float32Array(140).fill(3), z);
    expect(Math.max(...z.map(Math.abs))).toBeLessThan(1e-6);
  });
});

describe("proxSparsity", () => {
  const [rows, cols] = [24, 20];
  const n = rows * cols;
  const identity: LinearOperator = {
    name: "identity",
    input: { shape: [rows, cols], complex: false },
    output: { shape: [rows, cols], complex: false },
    forward: (x, out = new Float32Array(n)) => (out.set(x), out),
    adjoint: (x, out = new Float32Array(n)) => (out.set(x), out),
  };
  // A piecewise-constant image plus noise, in units of about 100.
  const b = randomVector(n, 7).map((v, i) => 100 * (Math.floor(i / cols) > rows / 2 ? 1 : 0.3) + 10 * v);
  const scale = Float32Array.from(b, Math.abs).sort()[Math.floor(0.99 * n)];
  const objective = (w: SparsifyingTransform, x: Float32Array, t: number) => {
    const wx = new Float32Array(w.length);
    w.forward(x, wx);
    let f = 0;
    for (let i = 0; i < n; i++) f += 0.5 * (x[i] - b[i]) ** 2;
    for (let j = 0; j < wx.length; j += w.groupSize) {
      let ss = 0;
      for (let c = 0; c < w.groupSize; c++) ss += wx[j + c] ** 2;
      f += t * Math.sqrt(ss);
    }
    return f;
  };

  it.each([
    ["tv", finiteDifferences(rows, cols, false), 0.02],
    ["wavelet", stationaryHaar(rows, cols, false, 3), 0.01],
  ] as const)(
    "%s: the minimiser PDHG converges to, in PDHG's lambda units; partial runs descend",
    (_, w, lambda) => {
      const exact = pdhg(identity, b, w, { lambda, iterations: 3000 });
      const prox = proxSparsity(w, b, lambda, scale, 300);
      let err = 0;
      for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(prox[i] - exact[i]));
      expect(err / scale).toBeLessThan(2e-3);
      const t = lambda * scale;
      expect(objective(w, prox, t)).toBeLessThanOrEqual(objective(w, exact, t) * (1 + 1e-5));
      // A few iterations already lower the objective well below that of b itself.
      const f5 = objective(w, proxSparsity(w, b, lambda, scale, 5), t);
      expect(f5).toBeLessThan(objective(w, b, t) - 0.5 * (objective(w, b, t) - objective(w, prox, t)));
      // lambda 0 or no iterations: b unchanged.
      expect(proxSparsity(w, b, 0, scale, 20)).toEqual(b);
      expect(proxSparsity(w, b, lambda, scale, 0)).toEqual(b);
    },
  );
});

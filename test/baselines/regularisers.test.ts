import { describe, expect, it } from "vitest";
import { dot } from "../../operators/linear-operator.js";
import { finiteDifferences, stationaryHaar } from "../../src/baselines/regularisers.js";
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

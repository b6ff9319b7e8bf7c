/** The ONNX graph of the score network computes what the TensorFlow.js network does. */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend, tf } from "../../src/prior/backend.js";
import { loadPrior } from "../../src/prior/checkpoint.js";
import { engineFor, engineThreads, initEngine, setEngineThreads } from "../../src/prior/engine.js";
import { makeSde } from "../../src/prior/sde.js";
import { ScoreUNet, type UNetConfig } from "../../src/prior/unet.js";
import { packageRoot } from "../../src/package-root.js";

beforeAll(async () => {
  await initBackend("wasm");
  expect(await initEngine("onnx")).toBe("onnx");
});

/** max |a - b| / max |b| of the two engines' scores on one batch. */
function compare(net: ScoreUNet, rows: number, cols: number, t: number[], seed: number): number {
  const x = tf.tidy(() =>
    tf.mul(tf.randomNormal([t.length, rows, cols, 1], 0, 1, "float32", seed), 2),
  ) as tf.Tensor4D;
  const [a, b] = (["onnx", "tfjs"] as const).map((name) =>
    tf.tidy(() => engineFor({ net }, name).score(x, t).dataSync() as Float32Array),
  );
  x.dispose();
  expect(a.length).toBe(b.length);
  let diff = 0,
    scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  expect(scale).toBeGreaterThan(0);
  return diff / scale;
}

/**
 * Every parameter random (zero-initialised ones too, so that every path of the network counts):
 * filters and dense weights scaled by their fan-in, norms and biases around their defaults.
 */
function randomise(net: ScoreUNet, seed: number): void {
  let k = seed;
  for (const [name, v] of net.variables) {
    if (name === "fourier/W") continue;
    const fanIn = v.shape.length === 1 ? 1 : v.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const value = tf.tidy(() => {
      const z = tf.randomNormal(v.shape, 0, 1, "float32", k++);
      if (name.endsWith("/gamma")) return tf.add(1, tf.mul(z, 0.2));
      if (v.shape.length === 1) return tf.mul(z, 0.1);
      return tf.mul(z, 1 / Math.sqrt(fanIn));
    });
    v.assign(value);
    value.dispose();
  }
}

const TOLERANCE = 1e-4;

describe("ONNX graph of the score network", () => {
  it.each(["mri", "ct"])("the shipped %s prior: ONNX Runtime and tfjs agree to 1e-4", (modality) => {
    const { net } = loadPrior(join(packageRoot(), "models", modality));
    // The training size, a size that is no multiple of the U-Net's (padded and cropped), batch 2.
    for (const [rows, cols] of [
      [48, 48],
      [96, 96],
      [53, 70],
    ])
      for (const t of [
        [1, 0.5],
        [0.1, 0.001],
      ])
        expect(compare(net, rows, cols, t, rows + cols)).toBeLessThan(TOLERANCE);
  });

  const ve = makeSde({ name: "ve", sigmaMin: 0.01, sigmaMax: 50 });
  const vp = makeSde({ name: "vp", betaMin: 0.1, betaMax: 20 });
  const base: UNetConfig = {
    channels: 8,
    channelMult: [1, 2],
    resBlocks: 1,
    fourierScale: 16,
    scaleBySigma: true,
  };
  const variants: [string, UNetConfig, boolean][] = [
    ["two levels", base, true],
    [
      "channel multipliers 1-2-2-2 with attention",
      { ...base, channelMult: [1, 2, 2, 2], attention: true },
      true,
    ],
    [
      "channel multipliers 1-1-3, two residual blocks per level",
      { ...base, channelMult: [1, 1, 3], resBlocks: 2 },
      true,
    ],
    [
      "16 channels, 1-2-2-2-2, attention (the MRI prior's shape)",
      { ...base, channels: 16, channelMult: [1, 2, 2, 2, 2], attention: true },
      true,
    ],
    ["one level, no sigma scaling (VP)", { ...base, channelMult: [2], scaleBySigma: false }, false],
    // up1/res1 and up0/res0 normalise concat(128, 64) channels in 32 groups of 6: a group spans both parts.
    ["64 channels, 1-2 (a GroupNorm group across a skip concatenation)", { ...base, channels: 64 }, true],
  ];
  it.each(variants)(
    "random weights, %s: ONNX Runtime and tfjs agree to 1e-4 at sizes 48 and 96",
    (_, config, isVe) => {
      const net = new ScoreUNet(config, isVe ? ve : vp, 1);
      randomise(net, 100);
      for (const size of [48, 96])
        for (const t of [
          [0.9, 0.3],
          [0.02, 0.6],
        ])
          expect(compare(net, size, size, t, size)).toBeLessThan(TOLERANCE);
      net.dispose();
    },
  );

  it("a parameter missing or of the wrong shape fails the build, naming it", async () => {
    const { buildOnnxModel } = await import("../../src/prior/onnx-graph.js");
    const net = new ScoreUNet(base, ve, 1);
    const weights = new Map(
      [...net.variables].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
    );
    expect(() => buildOnnxModel(base, weights)).not.toThrow();
    weights.set("in/b", { shape: [7], data: new Float32Array(7) });
    expect(() => buildOnnxModel(base, weights)).toThrow(/parameter 'in\/b' has shape 7, expected 8/);
    weights.delete("in/b");
    expect(() => buildOnnxModel(base, weights)).toThrow(/parameter 'in\/b' is missing/);
    net.dispose();
  });

  it("ONNX Runtime gives the same bytes with 1 and 2 threads per evaluation (workers do not change a seed's result)", () => {
    const { net } = loadPrior(join(packageRoot(), "models", "mri"));
    const x = tf.randomNormal([2, 64, 64, 1], 0, 1, "float32", 9) as tf.Tensor4D;
    const before = engineThreads();
    const run = (n: number) => {
      setEngineThreads(n);
      return Array.from(tf.tidy(() => engineFor({ net }, "onnx").score(x, [0.7, 0.2]).dataSync()));
    };
    try {
      expect(run(2)).toEqual(run(1));
    } finally {
      setEngineThreads(before);
      x.dispose();
    }
  });

  it("one engine evaluates batches of changing shapes (one session each, the oldest dropped) with the same results", () => {
    const { net } = loadPrior(join(packageRoot(), "models", "ct"));
    const score = (b: number, rows: number, cols: number) =>
      tf.tidy(() => {
        const x = tf.randomNormal([b, rows, cols, 1], 0, 1, "float32", rows) as tf.Tensor4D;
        return Array.from(engineFor({ net }, "onnx").score(x, new Array<number>(b).fill(0.4)).dataSync());
      });
    const first = score(2, 32, 32);
    for (const [b, rows, cols] of [
      [1, 32, 32],
      [2, 40, 24],
      [3, 17, 33],
      [2, 48, 48],
      [1, 16, 64],
    ])
      expect(score(b, rows, cols)).toHaveLength(b * rows * cols);
    expect(score(2, 32, 32)).toEqual(first);
    // A batch's first sample does not depend on the batch size it was evaluated in.
    const one = score(1, 32, 32);
    for (let i = 0; i < one.length; i += 97) expect(one[i]).toBeCloseTo(first[i], 5);
  });
});

/**
 * The network's building blocks: the custom convolution gradient on wasm against the cpu backend's
 * own Conv2D gradients (Conv2DBackpropInput / Conv2DBackpropFilter, which wasm lacks or runs
 * slowly), GroupNorm's and SiLU's own gradients against the tape's of their textbook forms, and
 * the wasm backend's data-sharing Identity (src/prior/backend.ts).
 */
import { describe, expect, it } from "vitest";
import { initBackend, tf } from "../../src/prior/backend.js";
import { conv2d } from "../../src/prior/layers.js";
import { randomVector } from "../helpers.js";

async function gradients(backend: "wasm" | "cpu", custom: boolean, k: number) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor4d(randomVector(2 * 9 * 7 * 3, 1), [2, 9, 7, 3]);
    const w = tf.tensor4d(randomVector(k * k * 3 * 4, 2), [k, k, 3, 4]);
    const target = tf.tensor4d(randomVector(2 * 9 * 7 * 4, 3), [2, 9, 7, 4]);
    const loss = (a: tf.Tensor, b: tf.Tensor) => {
      const y = custom
        ? conv2d(a as tf.Tensor4D, b as tf.Tensor4D)
        : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same");
      return tf.sum(tf.mul(tf.square(tf.sub(y, target)), 0.5));
    };
    return tf
      .grads(loss)([x, w])
      .map((g) => Array.from(g.dataSync()));
  });
}

describe("convolution gradient", () => {
  it.each([1, 3, 5])("%ix%i: wasm custom gradients equal the cpu backend's native ones", async (k) => {
    await initBackend("wasm");
    const [dxRef, dwRef] = await gradients("cpu", false, k);
    for (const [backend, custom] of [
      ["wasm", true],
      ["cpu", true],
    ] as const) {
      const [dx, dw] = await gradients(backend, custom, k);
      const scale = Math.max(...dwRef.map(Math.abs));
      dx.forEach((v, i) => expect(Math.abs(v - dxRef[i])).toBeLessThan(1e-4 * scale));
      dw.forEach((v, i) => expect(Math.abs(v - dwRef[i])).toBeLessThan(1e-4 * scale));
    }
    await tf.setBackend("wasm");
  });
});

describe("score U-Net", () => {
  it("runs on odd sizes, with and without attention, and passes gradients to every parameter", async () => {
    await initBackend("wasm");
    const { ScoreUNet } = await import("../../src/prior/unet.js");
    const { VeSde } = await import("../../src/prior/sde.js");
    for (const attention of [false, true]) {
      const net = new ScoreUNet(
        { channels: 8, channelMult: [1, 2], resBlocks: 1, fourierScale: 16, scaleBySigma: true, attention },
        new VeSde(),
      );
      const x = tf.tensor4d(randomVector(2 * 13 * 10, 4), [2, 13, 10, 1]);
      expect(net.apply(x, [0.2, 0.9]).shape).toEqual([2, 13, 10, 1]);
      const vars = net.trainable().map(([, v]) => v);
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(tf.sub(net.apply(x, [0.2, 0.9]), 1))) as tf.Scalar,
        vars,
      );
      // Zero-initialised output layers receive gradient first; everything else must be connected.
      expect(Object.keys(grads)).toHaveLength(vars.length);
      expect(net.variables.has("mid/attn/q/w")).toBe(attention);
      net.dispose();
    }
  });
});

describe("GroupNorm and SiLU", () => {
  const x = () =>
    tf.tensor4d(
      randomVector(2 * 9 * 7 * 8, 5).map((v) => 6 * v + 2),
      [2, 9, 7, 8],
    );
  const gamma = () => tf.tensor1d(randomVector(8, 6).map((v) => 1 + v));
  const beta = () => tf.tensor1d(randomVector(8, 7));
  // The textbook moments formulation, differentiated by the tape.
  const reference = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const g = tf.reshape(x, [2, 9, 7, 4, 2]);
    const { mean, variance } = tf.moments(g, [1, 2, 4], true);
    const n = tf.div(tf.sub(g, mean), tf.sqrt(tf.add(variance, 1e-5)));
    return tf.add(tf.mul(tf.reshape(n, [2, 9, 7, 8]), gamma), beta);
  };
  const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];

  it("GroupNorm equals the textbook moments formulation", async () => {
    await initBackend("wasm");
    const { groupNorm } = await import("../../src/prior/layers.js");
    const [xs, g, b] = [x(), gamma(), beta()];
    expect(maxDiff(reference(xs, g, b), groupNorm(xs, g, b, 4))).toBeLessThan(1e-5);
  });

  it("GroupNorm's own gradient equals the tape's of the textbook formulation", async () => {
    await initBackend("wasm");
    const { groupNorm } = await import("../../src/prior/layers.js");
    const weights = tf.tensor4d(randomVector(2 * 9 * 7 * 8, 8), [2, 9, 7, 8]);
    // A loss that weights every output differently, so each gradient entry is tested.
    const loss =
      (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) =>
      (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(tf.square(f(a, b, c)), weights));
    const got = tf.grads(
      loss((a, b, c) => groupNorm(a as tf.Tensor4D, b as tf.Tensor1D, c as tf.Tensor1D, 4)),
    )([x(), gamma(), beta()]);
    const want = tf.grads(loss(reference))([x(), gamma(), beta()]);
    for (let i = 0; i < 3; i++) {
      expect(got[i].shape).toEqual(want[i].shape);
      const scale = tf.max(tf.abs(want[i])).dataSync()[0];
      expect(scale).toBeGreaterThan(0);
      expect(maxDiff(got[i], want[i])).toBeLessThan(1e-5 * scale);
    }
  });

  it("SiLU's own gradient equals the tape's of x sigmoid(x)", async () => {
    await initBackend("wasm");
    const { silu } = await import("../../src/prior/layers.js");
    const xs = x();
    expect(maxDiff(silu(xs), tf.mul(xs, tf.sigmoid(xs)))).toBeLessThan(1e-6);
    const weights = tf.tensor4d(randomVector(2 * 9 * 7 * 8, 9), [2, 9, 7, 8]);
    const loss = (f: (a: tf.Tensor) => tf.Tensor) => (a: tf.Tensor) => tf.sum(tf.mul(f(a), weights));
    const got = tf.grad(loss(silu))(xs);
    const want = tf.grad(loss((a) => tf.mul(a, tf.sigmoid(a))))(xs);
    expect(maxDiff(got, want)).toBeLessThan(1e-5 * tf.max(tf.abs(want)).dataSync()[0]);
  });
});

describe("wasm backend", () => {
  it("the tape's copies share their data: no buffer allocated, values kept when the original goes", async () => {
    await initBackend("wasm");
    const x = tf.tensor1d([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(buffers);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    // A variable's assign replaces its data: a copy taken before keeps the old values.
    const v = tf.variable(tf.tensor1d([4, 5]));
    const c = tf.clone(v);
    v.assign(tf.tensor1d([6, 7]));
    expect(Array.from(c.dataSync())).toEqual([4, 5]);
    expect(Array.from(v.dataSync())).toEqual([6, 7]);
    tf.dispose([y, v, c]);
  });
});

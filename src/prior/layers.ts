/**
 * Network building blocks as plain functions over tf tensors (NHWC). The convolution carries its
 * own gradient: the wasm backend has no Conv2DBackpropFilter kernel, so the filter gradient is
 * built from kernels every backend has — for each kernel tap (ky, kx), the shifted input patch
 * times the output gradient, one matMul per tap: dW[ky, kx] = X_shift(ky, kx)^T dY. The input
 * gradient is the transposed convolution (Conv2DBackpropInput), which wasm has.
 */
import { tf } from "./backend.js";

type T4 = tf.Tensor4D;

function filterGradient(x: T4, dy: T4, kh: number, kw: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, ci] = x.shape;
    const co = dy.shape[3];
    const ph = (kh - 1) / 2,
      pw = (kw - 1) / 2;
    const xp = tf.pad(x, [
      [0, 0],
      [ph, ph],
      [pw, pw],
      [0, 0],
    ]);
    const dy2 = tf.reshape(dy, [b * h * w, co]);
    const taps: tf.Tensor2D[] = [];
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++) {
        const xs = tf.reshape(tf.slice(xp, [0, ky, kx, 0], [b, h, w, ci]), [b * h * w, ci]);
        taps.push(tf.matMul(xs, dy2, true, false));
      }
    return tf.reshape(tf.stack(taps), [kh, kw, ci, co]) as tf.Tensor4D;
  });
}

/** Stride-1 "same" convolution with an odd kernel, differentiable on every backend. */
export const conv2d = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
  const x4 = x as T4,
    w4 = w as T4;
  save([x4, w4]);
  return {
    value: tf.conv2d(x4, w4, 1, "same"),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [T4, T4];
      const dy4 = dy as T4;
      return [
        tf.conv2dTranspose(dy4, ws, xs.shape, 1, "same"),
        filterGradient(xs, dy4, ws.shape[0], ws.shape[1]),
      ];
    },
  };
}) as never) as unknown as (x: T4, w: T4) => T4;

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** GroupNorm (Wu & He 2018) over NHWC with `groups` groups; gamma, beta per channel. */
export function groupNorm(x: T4, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, eps = 1e-5): T4 {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const g = tf.reshape(x, [b, h, w, groups, c / groups]);
    const { mean, variance } = tf.moments(g, [1, 2, 4], true);
    const n = tf.reshape(tf.div(tf.sub(g, mean), tf.sqrt(tf.add(variance, eps))), [b, h, w, c]);
    return tf.add(tf.mul(n, gamma), beta) as T4;
  });
}

/** 2x2 average pooling by reshape and mean (its gradient needs no pooling kernel). */
export function downsample(x: T4): T4 {
  const [b, h, w, c] = x.shape;
  return tf.mean(tf.reshape(x, [b, h / 2, 2, w / 2, 2, c]), [2, 4]) as T4;
}

/** Nearest-neighbour 2x upsampling by broadcasting (its gradient is a sum). */
export function upsample(x: T4): T4 {
  const [b, h, w, c] = x.shape;
  return tf.reshape(tf.mul(tf.reshape(x, [b, h, 1, w, 1, c]), tf.ones([1, 1, 2, 1, 2, 1])), [
    b,
    2 * h,
    2 * w,
    c,
  ]) as T4;
}

/**
 * Network building blocks as plain functions over tf tensors (NHWC).
 *
 * The convolution carries its own gradient, built from forward convolutions only. The wasm
 * backend has no Conv2DBackpropFilter kernel, and its Conv2DBackpropInput is about 8x slower than
 * its (XNNPACK) Conv2D; both gradients of a stride-1 "same" convolution with an odd k x k kernel
 * are themselves convolutions:
 * - input: dX = conv(dY, W') with W' the kernel rotated by 180 degrees and its in/out channels
 *   swapped;
 * - filter: dW[ky, kx, ci, co] = sum_{b,i,j} Xpad[b, i+ky, j+kx, ci] dY[b, i, j, co], a "valid"
 *   convolution of Xpad with batch and channels swapped (shape [Ci, H+k-1, W+k-1, B]) by dY used
 *   as a [H, W, B, Co] filter.
 * Measured on wasm (8x64x64x32, 3x3x32x32): dX 20 ms instead of 164 ms; dW 31 ms where nine
 * per-tap matMuls take 211 ms.
 */
import { tf } from "./backend.js";

type T4 = tf.Tensor4D;

function inputGradient(dy: T4, w: T4): T4 {
  return tf.tidy(() => tf.conv2d(dy, tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as T4, 1, "same"));
}

function filterGradient(x: T4, dy: T4, kh: number, kw: number): T4 {
  return tf.tidy(() => {
    const ph = (kh - 1) / 2,
      pw = (kw - 1) / 2;
    const xp = tf.pad(x, [
      [0, 0],
      [ph, ph],
      [pw, pw],
      [0, 0],
    ]);
    const xt = tf.transpose(xp, [3, 1, 2, 0]) as T4;
    const ft = tf.transpose(dy, [1, 2, 0, 3]) as T4;
    return tf.transpose(tf.conv2d(xt, ft, 1, "valid"), [1, 2, 0, 3]) as T4;
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
      return [inputGradient(dy as T4, ws), filterGradient(xs, dy as T4, ws.shape[0], ws.shape[1])];
    },
  };
}) as never) as unknown as (x: T4, w: T4) => T4;

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * GroupNorm (Wu & He 2018) over NHWC with `groups` groups; gamma, beta per channel. The per-channel
 * sums over pixels are batched matMuls with a ones vector (fast on every backend, where reducing
 * the middle axes of a 5-D tensor costs transposes), and normalisation folds into one multiply-add:
 * y = x a + b with a = gamma / sqrt(var + eps), b = beta - mean a.
 */
export function groupNorm(x: T4, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, eps = 1e-5): T4 {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const xs = tf.reshape(x, [b, h * w, c]) as tf.Tensor3D;
    const avg = tf.fill([b, 1, h * w], 1 / (h * w)) as tf.Tensor3D;
    const perGroup = (m: tf.Tensor) =>
      tf.reshape(tf.tile(tf.mean(tf.reshape(m, [b, groups, c / groups]), 2, true), [1, 1, c / groups]), [
        b,
        1,
        c,
      ]);
    const mean = perGroup(tf.matMul(avg, xs));
    const meanSq = perGroup(tf.matMul(avg, tf.square(xs)));
    const variance = tf.relu(tf.sub(meanSq, tf.square(mean)));
    const a = tf.mul(gamma, tf.rsqrt(tf.add(variance, eps)));
    const shift = tf.sub(beta, tf.mul(mean, a));
    return tf.reshape(tf.add(tf.mul(xs, a), shift), [b, h, w, c]) as T4;
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

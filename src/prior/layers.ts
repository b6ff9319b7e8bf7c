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

/**
 * SiLU x sigmoid(x) with its own gradient dy s (1 + x (1 - s)), s = sigmoid(x) recomputed: the
 * tape of the two-op form saves three tensors and runs seven kernels backwards.
 */
export const silu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.mul(x, tf.sigmoid(x)),
    gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) =>
      tf.tidy(() => {
        const s = tf.sigmoid(xs);
        return tf.mul(dy, tf.mul(s, tf.add(tf.mul(xs, tf.sub(1, s)), 1)));
      }),
  };
}) as never) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * GroupNorm (Wu & He 2018) over NHWC with `groups` groups; gamma, beta per channel, with its own
 * gradient (the taped form costs some 60 kernels a call, a third of them copies of saved tensors).
 * Sums over pixels are batched matMuls with a constant vector (fast on every backend, where
 * reducing the middle axes of a tensor costs transposes), and normalisation folds into one
 * multiply-add: y = x a + b with a = gamma rstd, b = beta - mean a. Backwards, with g = dy gamma
 * and x^ = (x - mean) rstd: dx = rstd (g - mean_G(g) - x^ mean_G(g x^)), dgamma = sum dy x^,
 * dbeta = sum dy.
 */
export function groupNorm(x: T4, gamma: tf.Tensor1D, beta: tf.Tensor1D, groups: number, eps = 1e-5): T4 {
  let f = groupNorms.get(`${groups} ${eps}`);
  if (!f) groupNorms.set(`${groups} ${eps}`, (f = groupNormOp(groups, eps)));
  return f(x, gamma, beta);
}

type GroupNormOp = (x: T4, gamma: tf.Tensor1D, beta: tf.Tensor1D) => T4;
const groupNorms = new Map<string, GroupNormOp>();

function groupNormOp(groups: number, eps: number): GroupNormOp {
  return tf.customGrad(((x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
    const [b, h, w, c] = x.shape;
    const n = h * w,
      cg = c / groups;
    const xs = tf.reshape(x, [b, n, c]) as tf.Tensor3D;
    // [b, n, c] -> [b, groups, 1] per-group means (the pixel mean a [b, 1, n] x [b, n, c] matMul).
    const groupMean = (m: tf.Tensor3D) =>
      tf.mean(tf.reshape(tf.matMul(tf.fill([b, 1, n], 1 / n) as tf.Tensor3D, m), [b, groups, cg]), 2, true);
    // [b, groups, 1] per group -> [b, 1, c] per channel.
    const perChannel = (v: tf.Tensor) => tf.reshape(tf.broadcastTo(v, [b, groups, cg]), [b, 1, c]);
    const mean = groupMean(xs);
    const rstd = tf.rsqrt(tf.add(tf.relu(tf.sub(groupMean(tf.square(xs)), tf.square(mean))), eps));
    const gammaG = tf.reshape(gamma, [1, groups, cg]);
    const scaleG = tf.mul(rstd, gammaG);
    const a = tf.reshape(scaleG, [b, 1, c]);
    const shift = tf.reshape(tf.sub(tf.reshape(beta, [1, groups, cg]), tf.mul(mean, scaleG)), [b, 1, c]);
    save([x, gamma, mean, rstd]);
    return {
      value: tf.reshape(tf.add(tf.mul(xs, a), shift), [b, h, w, c]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [x0, g0, mu, r] = saved;
          const x3 = tf.reshape(x0, [b, n, c]) as tf.Tensor3D;
          const dy3 = tf.reshape(dy, [b, n, c]) as tf.Tensor3D;
          const rc = perChannel(r);
          const xhat = tf.add(tf.mul(x3, rc), perChannel(tf.neg(tf.mul(mu, r)))) as tf.Tensor3D;
          // Sums over batch and pixels: [1, 1, b n] x [1, b n, c].
          const ones = tf.ones([1, 1, b * n]) as tf.Tensor3D;
          const total = (m: tf.Tensor) =>
            tf.reshape(tf.matMul(ones, tf.reshape(m, [1, b * n, c]) as tf.Tensor3D), [c]);
          const g = tf.mul(dy3, g0) as tf.Tensor3D;
          const m1 = groupMean(g),
            m2 = groupMean(tf.mul(g, xhat) as tf.Tensor3D);
          const dx = tf.add(
            tf.add(tf.mul(g, rc), tf.mul(xhat, perChannel(tf.neg(tf.mul(m2, r))))),
            perChannel(tf.neg(tf.mul(m1, r))),
          );
          return [tf.reshape(dx, [b, h, w, c]), total(tf.mul(dy3, xhat)), total(dy3)];
        }),
    };
  }) as never) as unknown as GroupNormOp;
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

/**
 * The score network on TensorFlow.js (training, and inference on the tfjs engine): the
 * architecture of src/prior/unet-arch.ts over tf tensors (NHWC), its parameters as tf.Variables
 * created by one forward pass at construction.
 */
import { tf } from "./backend.js";
import { conv2d, downsample, groupNorm, silu, upsample } from "./layers.js";
import type { Sde } from "./sde.js";
import { unetForward, type NetOps, type ParamInit, type UNetConfig } from "./unet-arch.js";

export { DEFAULT_UNET, type UNetConfig } from "./unet-arch.js";

type T4 = tf.Tensor4D;

export class ScoreUNet {
  /** Parameters by their network-local names (e.g. "down0/res0/conv0/w"). */
  readonly variables = new Map<string, tf.Variable>();
  // tf.variable names are global to the engine; a per-instance prefix lets networks coexist.
  private static instances = 0;
  private readonly prefix = `unet${ScoreUNet.instances++}/`;
  private building = true;
  private initSeed: number;
  private readonly ops: NetOps<tf.Tensor, tf.Tensor>;

  constructor(
    readonly config: UNetConfig,
    readonly sde: Sde,
    seed = 0,
  ) {
    this.initSeed = seed * 7919 + 1;
    this.ops = tfOps((name, shape, init) => this.param(name, shape, init));
    // One forward pass at the smallest valid size creates every variable in a fixed order.
    const m = 2 ** (config.channelMult.length - 1);
    tf.tidy(() => {
      this.apply(tf.zeros([1, m, m, 1]) as T4, [0.5]);
    });
    this.building = false;
  }

  private param(name: string, shape: number[], init: ParamInit): tf.Tensor {
    const existing = this.variables.get(name);
    if (existing) return existing;
    if (!this.building) throw new Error(`score network has no parameter '${name}'`);
    const seed = this.initSeed++;
    const value = tf.tidy(() => {
      if (init === "zeros") return tf.zeros(shape);
      if (init === "ones") return tf.ones(shape);
      if (init === "fourier") return tf.randomNormal(shape, 0, this.config.fourierScale, "float32", seed);
      // Variance scaling, fan_avg, uniform (score_sde default_init).
      const receptive = shape.length === 4 ? shape[0] * shape[1] : 1;
      const fanIn = shape[shape.length - 2] * receptive,
        fanOut = shape[shape.length - 1] * receptive;
      const limit = Math.sqrt(3 / ((fanIn + fanOut) / 2));
      return tf.randomUniform(shape, -limit, limit, "float32", seed);
    });
    const v = tf.variable(value, init !== "fourier", this.prefix + name);
    value.dispose();
    this.variables.set(name, v);
    return v;
  }

  /** The score s(x, t) for a batch x [B, H, W, 1] at times t (one per batch element). */
  apply(x: T4, t: number[]): T4 {
    const b = x.shape[0];
    const level = tf.tensor2d(
      t.map((ti) => this.sde.noiseInput(ti)),
      [b, 1],
    );
    const sigma = this.config.scaleBySigma ? tf.tensor1d(t.map((ti) => this.sde.std(ti))) : undefined;
    return unetForward(this.ops, this.config, x, level, sigma) as T4;
  }

  /** [local name, variable] of the trainable parameters, in creation order. */
  trainable(): [string, tf.Variable][] {
    return [...this.variables].filter(([, v]) => v.trainable);
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.variables.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

/** The network's primitives on tf tensors, NHWC. */
function tfOps(param: NetOps<tf.Tensor, tf.Tensor>["param"]): NetOps<tf.Tensor, tf.Tensor> {
  // Per-pixel matMul over the channels: [B, H, W, in] x [in, out] + b.
  const pixelMatMul = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => {
    const [n, h, wd, c] = x.shape;
    const out = w.shape[w.shape.length - 1];
    const y = tf.matMul(tf.reshape(x, [n * h * wd, c]), tf.reshape(w, [c, out]));
    return tf.reshape(tf.add(y, b), [n, h, wd, out]);
  };
  return {
    param,
    channels: (x) => x.shape[x.shape.length - 1],
    padToMultiple(x, m) {
      const [, h, w] = x.shape;
      const ph = (m - (h % m)) % m,
        pw = (m - (w % m)) % m;
      return ph || pw
        ? tf.pad(x, [
            [0, 0],
            [0, ph],
            [0, pw],
            [0, 0],
          ])
        : x;
    },
    cropTo(h, like) {
      const [b, h0, w0] = (like as T4).shape;
      const [, h1, w1, c] = (h as T4).shape;
      return h1 === h0 && w1 === w0 ? h : tf.slice(h, [0, 0, 0, 0], [b, h0, w0, c]);
    },
    // A 1x1 convolution is a matMul over pixels (and needs no filter-gradient kernel).
    conv: (x, w, b) => (w.shape[0] === 1 ? pixelMatMul(x, w, b) : tf.add(conv2d(x as T4, w as T4), b)),
    dense: (x, w, b) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
    linear: pixelMatMul,
    groupNorm: (x, gamma, beta, groups) =>
      groupNorm(x as T4, gamma as tf.Tensor1D, beta as tf.Tensor1D, groups),
    silu,
    add: (a, b) => tf.add(a, b),
    scale: (x, c) => tf.mul(x, c),
    addPerSample: (h, v) => {
      const [b, c] = (v as tf.Tensor2D).shape;
      return tf.add(h, tf.reshape(v, [b, 1, 1, c]));
    },
    concat: (a, b) => tf.concat([a, b], a.rank - 1),
    downsample: (x) => downsample(x as T4),
    upsample: (x) => upsample(x as T4),
    fourier(level, w) {
      const proj = tf.mul(tf.matMul(level as tf.Tensor2D, w as tf.Tensor2D), 2 * Math.PI);
      return tf.concat([tf.sin(proj), tf.cos(proj)], 1);
    },
    attention(q, k, v) {
      const [b, h, w, c] = q.shape;
      const flat = (t: tf.Tensor) => tf.reshape(t, [b, h * w, c]) as tf.Tensor3D;
      const attn = tf.softmax(tf.mul(tf.matMul(flat(q), flat(k), false, true), 1 / Math.sqrt(c)));
      return tf.reshape(tf.matMul(attn, flat(v)), [b, h, w, c]);
    },
    divPerSample: (h, sigma) => tf.div(h, tf.reshape(sigma, [h.shape[0], 1, 1, 1])),
  };
}

/**
 * Time-conditioned score network: a U-Net of the NCSN++/DDPM++ family (Song et al. 2021; Ho et
 * al. 2020) sized for CPUs. Gaussian Fourier features of the noise level (log sigma for VE) feed a
 * two-layer MLP whose output conditions every residual block (GroupNorm, SiLU, 3x3 convolutions,
 * skip connections rescaled by 1/sqrt(2)); skip connections join the down and up paths. The
 * output is divided by sigma(t) for VE SDEs (NCSN++ `scale_by_sigma`). The network is fully
 * convolutional: inputs of any size are padded to a multiple of 2^(levels-1) and cropped back, so
 * a model trained on crops runs on whole slices.
 */
import { tf } from "./backend.js";
import { conv2d, downsample, groupNorm, silu, upsample } from "./layers.js";
import type { Sde } from "./sde.js";

export interface UNetConfig {
  /** Base channel count. */
  channels: number;
  /** Channel multiplier per resolution level. */
  channelMult: number[];
  /** Residual blocks per level on the way down. */
  resBlocks: number;
  /** Standard deviation of the fixed Fourier feature frequencies. */
  fourierScale: number;
  /** Divide the output by sigma(t) (VE SDEs). */
  scaleBySigma: boolean;
  /** Self-attention block at the lowest resolution (NCSN++ AttnBlock); on in the shipped MRI prior. */
  attention?: boolean;
}

/**
 * The default network and the shipped CT prior's: about 0.23 M parameters, fast enough for 256x256
 * on a CPU. The shipped MRI prior adds two levels (channelMult 1-2-2-2-2) and attention: 0.41 M
 * parameters at the same cost per evaluation, as the added levels run at 1/8 and 1/16 resolution.
 */
export const DEFAULT_UNET: UNetConfig = {
  channels: 16,
  channelMult: [1, 2, 2],
  resBlocks: 1,
  fourierScale: 16,
  scaleBySigma: true,
};

type T4 = tf.Tensor4D;

export class ScoreUNet {
  /** Parameters by their network-local names (e.g. "down0/res0/conv0/w"). */
  readonly variables = new Map<string, tf.Variable>();
  // tf.variable names are global to the engine; a per-instance prefix lets networks coexist.
  private static instances = 0;
  private readonly prefix = `unet${ScoreUNet.instances++}/`;
  private building = true;
  private initSeed: number;

  constructor(
    readonly config: UNetConfig,
    readonly sde: Sde,
    seed = 0,
  ) {
    this.initSeed = seed * 7919 + 1;
    // One forward pass at the smallest valid size creates every variable in a fixed order.
    const m = 2 ** (config.channelMult.length - 1);
    tf.tidy(() => {
      this.apply(tf.zeros([1, m, m, 1]) as T4, [0.5]);
    });
    this.building = false;
  }

  private param(name: string, shape: number[], init: "fan" | "zeros" | "ones" | "fourier"): tf.Tensor {
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

  private conv(name: string, x: T4, out: number, k = 3, zeroInit = false): T4 {
    const w = this.param(`${name}/w`, [k, k, x.shape[3], out], zeroInit ? "zeros" : "fan") as tf.Tensor4D;
    const b = this.param(`${name}/b`, [out], "zeros");
    if (k === 1) {
      // A 1x1 convolution is a matMul over pixels (and needs no filter-gradient kernel).
      const [n, h, wd, c] = x.shape;
      const y = tf.matMul(tf.reshape(x, [n * h * wd, c]), tf.reshape(w, [c, out]));
      return tf.reshape(tf.add(y, b), [n, h, wd, out]) as T4;
    }
    return tf.add(conv2d(x, w), b) as T4;
  }

  private dense(name: string, x: tf.Tensor2D, out: number): tf.Tensor2D {
    const w = this.param(`${name}/w`, [x.shape[1], out], "fan") as tf.Tensor2D;
    return tf.add(tf.matMul(x, w), this.param(`${name}/b`, [out], "zeros")) as tf.Tensor2D;
  }

  private norm(name: string, x: T4): T4 {
    const c = x.shape[3];
    const groups = Math.min(32, Math.max(1, c / 4));
    return groupNorm(
      x,
      this.param(`${name}/gamma`, [c], "ones") as tf.Tensor1D,
      this.param(`${name}/beta`, [c], "zeros") as tf.Tensor1D,
      groups,
    );
  }

  private resBlock(name: string, x: T4, temb: tf.Tensor2D, out: number): T4 {
    let h = this.conv(`${name}/conv0`, silu(this.norm(`${name}/norm0`, x)) as T4, out);
    const t = this.dense(`${name}/temb`, silu(temb) as tf.Tensor2D, out);
    h = tf.add(h, tf.reshape(t, [t.shape[0], 1, 1, out])) as T4;
    h = this.conv(`${name}/conv1`, silu(this.norm(`${name}/norm1`, h)) as T4, out, 3, true);
    const skip = x.shape[3] === out ? x : this.conv(`${name}/skip`, x, out, 1);
    return tf.mul(tf.add(skip, h), Math.SQRT1_2) as T4;
  }

  /** Single-head self-attention over pixels (NCSN++ AttnBlock), residual, rescaled by 1/sqrt(2). */
  private attnBlock(name: string, x: T4): T4 {
    const [b, h, w, c] = x.shape;
    const n = this.norm(`${name}/norm`, x);
    const flat = tf.reshape(n, [b, h * w, c]) as tf.Tensor3D;
    const proj = (k: string) => {
      const wt = this.param(`${name}/${k}/w`, [c, c], k === "out" ? "zeros" : "fan");
      return (v: tf.Tensor3D) =>
        tf.add(
          tf.matMul(tf.reshape(v, [b * h * w, c]), wt as tf.Tensor2D),
          this.param(`${name}/${k}/b`, [c], "zeros"),
        );
    };
    const q = tf.reshape(proj("q")(flat), [b, h * w, c]) as tf.Tensor3D;
    const k = tf.reshape(proj("k")(flat), [b, h * w, c]) as tf.Tensor3D;
    const v = tf.reshape(proj("v")(flat), [b, h * w, c]) as tf.Tensor3D;
    const attn = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(c)));
    const hOut = tf.reshape(proj("out")(tf.matMul(attn, v) as tf.Tensor3D), [b, h, w, c]);
    return tf.mul(tf.add(x, hOut), Math.SQRT1_2) as T4;
  }

  /** The score s(x, t) for a batch x [B, H, W, 1] at times t (one per batch element). */
  apply(x: T4, t: number[]): T4 {
    const { channels: nf, channelMult, resBlocks } = this.config;
    const [b, h0, w0] = x.shape;
    const m = 2 ** (channelMult.length - 1);
    const ph = (m - (h0 % m)) % m,
      pw = (m - (w0 % m)) % m;
    let h: T4 =
      ph || pw
        ? tf.pad(x, [
            [0, 0],
            [0, ph],
            [0, pw],
            [0, 0],
          ])
        : x;
    // Gaussian Fourier features of the noise level, then an MLP.
    const level = tf.tensor2d(
      t.map((ti) => this.sde.noiseInput(ti)),
      [b, 1],
    );
    const freqs = this.param("fourier/W", [1, nf / 2], "fourier") as tf.Tensor2D;
    const proj = tf.mul(tf.matMul(level, freqs), 2 * Math.PI);
    let temb = tf.concat([tf.sin(proj), tf.cos(proj)], 1) as tf.Tensor2D;
    temb = this.dense("temb/dense0", temb, 4 * nf);
    temb = this.dense("temb/dense1", silu(temb) as tf.Tensor2D, 4 * nf);

    h = this.conv("in", h, nf);
    const skips: T4[] = [h];
    channelMult.forEach((mult, l) => {
      for (let r = 0; r < resBlocks; r++) {
        h = this.resBlock(`down${l}/res${r}`, h, temb, nf * mult);
        skips.push(h);
      }
      if (l < channelMult.length - 1) {
        h = downsample(h);
        skips.push(h);
      }
    });
    const top = nf * channelMult[channelMult.length - 1];
    h = this.resBlock("mid/res0", h, temb, top);
    if (this.config.attention) h = this.attnBlock("mid/attn", h);
    h = this.resBlock("mid/res1", h, temb, top);
    for (let l = channelMult.length - 1; l >= 0; l--) {
      for (let r = 0; r <= resBlocks; r++)
        h = this.resBlock(`up${l}/res${r}`, tf.concat([h, skips.pop()!], 3) as T4, temb, nf * channelMult[l]);
      if (l > 0) h = upsample(h);
    }
    h = this.conv("out", silu(this.norm("out/norm", h)) as T4, 1, 3, true);
    if (ph || pw) h = tf.slice(h, [0, 0, 0, 0], [b, h0, w0, 1]);
    if (this.config.scaleBySigma)
      h = tf.div(
        h,
        tf.tensor4d(
          t.map((ti) => this.sde.std(ti)),
          [b, 1, 1, 1],
        ),
      ) as T4;
    return h;
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

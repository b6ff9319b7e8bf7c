/**
 * The score network's architecture, described once: a U-Net of the NCSN++/DDPM++ family (Song et
 * al. 2021; Ho et al. 2020) sized for CPUs. Gaussian Fourier features of the noise level (log sigma
 * for VE) feed a two-layer MLP whose output conditions every residual block (GroupNorm, SiLU, 3x3
 * convolutions, skip connections rescaled by 1/sqrt(2)); skip connections join the down and up
 * paths. The output is divided by sigma(t) for VE SDEs (NCSN++ `scale_by_sigma`). The network is
 * fully convolutional: inputs of any size are padded to a multiple of 2^(levels-1) and cropped
 * back, so a model trained on crops runs on whole slices.
 *
 * `unetForward` is written against `NetOps`, a small set of primitives with parameters by name.
 * Two engines implement them: TensorFlow.js tensors (src/prior/unet.ts: training, and inference on
 * tfjs) and an ONNX graph builder (src/prior/onnx-graph.ts: inference on ONNX Runtime). Parameter
 * names, shapes, their creation order and the layer structure exist only here.
 */

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

/**
 * How a parameter is initialised: "fan" is variance scaling (fan_avg, uniform; score_sde
 * default_init); "fourier" is the fixed, untrained N(0, fourierScale^2) frequencies.
 */
export type ParamInit = "fan" | "zeros" | "ones" | "fourier";

/**
 * The primitives of the network, over images [B, H, W, C] (stored in whatever layout an engine
 * uses) and vectors [B, C]. Parameter shapes are in TensorFlow.js layout (conv: [k, k, in, out],
 * dense: [in, out]); an engine converts them.
 */
export interface NetOps<V, P> {
  /** The parameter `name` of `shape`, created with `init` when the network is built. */
  param(name: string, shape: number[], init: ParamInit): P;
  /** The last (channel) dimension of an image or vector. */
  channels(x: V): number;
  /** Zero-pads the bottom and right edges to multiples of m (x itself when they are). */
  padToMultiple(x: V, m: number): V;
  /** The top-left part of h of the size of `like` (h itself when they match). */
  cropTo(h: V, like: V): V;
  /** Stride-1 "same" convolution with a [k, k, in, out] filter, plus bias. */
  conv(x: V, w: P, b: P): V;
  /** [B, in] x [in, out] + b. */
  dense(x: V, w: P, b: P): V;
  /** The same linear map on every pixel's channels: [in, out], plus bias. */
  linear(x: V, w: P, b: P): V;
  groupNorm(x: V, gamma: P, beta: P, groups: number): V;
  silu(x: V): V;
  add(a: V, b: V): V;
  scale(x: V, c: number): V;
  /** An image plus a per-sample vector [B, C] on every pixel. */
  addPerSample(h: V, v: V): V;
  /** Channels of a, then of b. */
  concat(a: V, b: V): V;
  /** 2x2 average pooling. */
  downsample(x: V): V;
  /** Nearest-neighbour 2x upsampling. */
  upsample(x: V): V;
  /** [sin(2 pi level W), cos(2 pi level W)] for level [B, 1] and W [1, F]: [B, 2F]. */
  fourier(level: V, w: P): V;
  /** Single-head attention over pixels: softmax(q k^T / sqrt(C)) v, per sample. */
  attention(q: V, k: V, v: V): V;
  /** Each sample's image divided by its own scalar (sigma [B]). */
  divPerSample(h: V, sigma: V): V;
}

function conv<V, P>(o: NetOps<V, P>, name: string, x: V, out: number, k = 3, zeroInit = false): V {
  const w = o.param(`${name}/w`, [k, k, o.channels(x), out], zeroInit ? "zeros" : "fan");
  return o.conv(x, w, o.param(`${name}/b`, [out], "zeros"));
}

function dense<V, P>(o: NetOps<V, P>, name: string, x: V, out: number): V {
  const w = o.param(`${name}/w`, [o.channels(x), out], "fan");
  return o.dense(x, w, o.param(`${name}/b`, [out], "zeros"));
}

function norm<V, P>(o: NetOps<V, P>, name: string, x: V): V {
  const c = o.channels(x);
  const gamma = o.param(`${name}/gamma`, [c], "ones");
  const beta = o.param(`${name}/beta`, [c], "zeros");
  return o.groupNorm(x, gamma, beta, Math.min(32, Math.max(1, c / 4)));
}

function resBlock<V, P>(o: NetOps<V, P>, name: string, x: V, temb: V, out: number): V {
  let h = conv(o, `${name}/conv0`, o.silu(norm(o, `${name}/norm0`, x)), out);
  h = o.addPerSample(h, dense(o, `${name}/temb`, o.silu(temb), out));
  h = conv(o, `${name}/conv1`, o.silu(norm(o, `${name}/norm1`, h)), out, 3, true);
  const skip = o.channels(x) === out ? x : conv(o, `${name}/skip`, x, out, 1);
  return o.scale(o.add(skip, h), Math.SQRT1_2);
}

/** Single-head self-attention over pixels (NCSN++ AttnBlock), residual, rescaled by 1/sqrt(2). */
function attnBlock<V, P>(o: NetOps<V, P>, name: string, x: V): V {
  const c = o.channels(x);
  const n = norm(o, `${name}/norm`, x);
  const proj = (k: string, v: V) => {
    const w = o.param(`${name}/${k}/w`, [c, c], k === "out" ? "zeros" : "fan");
    return o.linear(v, w, o.param(`${name}/${k}/b`, [c], "zeros"));
  };
  const q = proj("q", n),
    k = proj("k", n),
    v = proj("v", n);
  return o.scale(o.add(x, proj("out", o.attention(q, k, v))), Math.SQRT1_2);
}

/**
 * The score s(x, t) for images x [B, H, W, 1], given the network's noise-level input `level`
 * [B, 1] (Sde.noiseInput(t)) and, when the config scales by sigma, `sigma` [B] (Sde.std(t)).
 */
export function unetForward<V, P>(o: NetOps<V, P>, config: UNetConfig, x: V, level: V, sigma?: V): V {
  const { channels: nf, channelMult, resBlocks } = config;
  let h = o.padToMultiple(x, 2 ** (channelMult.length - 1));
  let temb = o.fourier(level, o.param("fourier/W", [1, nf / 2], "fourier"));
  temb = dense(o, "temb/dense0", temb, 4 * nf);
  temb = dense(o, "temb/dense1", o.silu(temb), 4 * nf);

  h = conv(o, "in", h, nf);
  const skips: V[] = [h];
  channelMult.forEach((mult, l) => {
    for (let r = 0; r < resBlocks; r++) {
      h = resBlock(o, `down${l}/res${r}`, h, temb, nf * mult);
      skips.push(h);
    }
    if (l < channelMult.length - 1) {
      h = o.downsample(h);
      skips.push(h);
    }
  });
  const top = nf * channelMult[channelMult.length - 1];
  h = resBlock(o, "mid/res0", h, temb, top);
  if (config.attention) h = attnBlock(o, "mid/attn", h);
  h = resBlock(o, "mid/res1", h, temb, top);
  for (let l = channelMult.length - 1; l >= 0; l--) {
    for (let r = 0; r <= resBlocks; r++)
      h = resBlock(o, `up${l}/res${r}`, o.concat(h, skips.pop()!), temb, nf * channelMult[l]);
    if (l > 0) h = o.upsample(h);
  }
  h = conv(o, "out", o.silu(norm(o, "out/norm", h)), 1, 3, true);
  h = o.cropTo(h, x);
  return config.scaleBySigma && sigma ? o.divPerSample(h, sigma) : h;
}

/**
 * Denoising score matching (Vincent 2011) in continuous time (Song et al. 2021): for t ~ U(eps, 1),
 * x_t = mean(t) x_0 + std(t) z, the network minimises |std(t) s(x_t, t) + z|^2 averaged over
 * pixels — the lambda(t) = std(t)^2 weighting, which makes every noise level count alike. Adam with
 * linear warm-up, gradient clipping by global norm, and an exponential moving average of the
 * weights (what sampling uses). Data and augmentation: src/prior/data.ts.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createRng } from "../../operators/random.js";
import type { PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import type { Volume } from "../image/volume.js";
import { tf } from "./backend.js";
import {
  loadPrior,
  loadTrainState,
  saveCheckpoint,
  saveTrainState,
  type DataFile,
  type Normalisation,
  type PriorInfo,
} from "./checkpoint.js";
import {
  defaultAugmentations,
  makeBatch,
  trainingSlices,
  type Augmentation,
  type Axis,
  type BatchSource,
} from "./data.js";
import { makeSde, type SdeConfig } from "./sde.js";
import { ScoreUNet, type UNetConfig } from "./unet.js";

export interface TrainOptions {
  modality: "mri" | "ct";
  volumes: Volume[];
  /** The orientations slices are taken along (default axial only). */
  axes?: Axis[];
  /** Default: defaultAugmentations(modality). */
  augment?: Augmentation[];
  phantom?: PhantomKind;
  dataDescription: string;
  /** Where each volume came from (same order as `volumes`), recorded in prior.json. */
  sources?: Omit<DataFile, "count">[];
  size: number;
  steps: number;
  batch: number;
  out: string;
  resume?: boolean;
  init?: string;
  sde: SdeConfig;
  network: UNetConfig;
  lr?: number;
  warmup?: number;
  ema?: number;
  gradClip?: number;
  checkpointEvery?: number;
  seed?: number;
  backend: string;
  command?: string;
  onStep?: (step: number, loss: number) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  steps: number;
  finalLoss: number | null;
  seconds: number;
  /** true when stopped by the signal before `steps`. */
  interrupted: boolean;
  /** With `init`: how many of the network's trainable parameter tensors came from that prior. */
  init?: { copied: number; of: number };
}

/** Training needs images or a phantom kind to draw from. */
export function requireTrainingData(images: number, phantom?: string): void {
  if (images === 0 && !phantom)
    throw new UserError(
      "no training data: give --data files or folders, or --phantom KIND",
      "bad_flag",
      "--data",
    );
}

export async function trainPrior(o: TrainOptions): Promise<TrainResult> {
  requireTrainingData(o.volumes.length, o.phantom);
  // The CT prior works in (HU + 1000) / 2000 whatever it learned from (images not in HU are
  // mapped to attenuation); the MRI prior in percentile-normalised intensity.
  const normalisation: Normalisation =
    o.modality === "ct" ? { kind: "hu" } : { kind: "percentile", percentile: 99.5 };
  const augment = o.augment ?? defaultAugmentations(o.modality);
  const axes = o.axes ?? ["axial"];
  const perVolume = o.volumes.map((v) => trainingSlices(o.modality, v, axes));
  const data: BatchSource = { modality: o.modality, slices: perVolume.flat(), phantom: o.phantom, augment };
  const dataFiles =
    o.sources &&
    describeSources(
      o.sources,
      perVolume.map((s) => s.length),
    );
  const sde = makeSde(o.sde);
  const net = new ScoreUNet(o.network, sde, o.seed ?? 0);
  const init = o.init ? initFrom(net, o.init) : undefined;
  const trainable = net.trainable();
  const vars = trainable.map(([, v]) => v);
  const ema = new Map<string, tf.Variable>();
  for (const [name, v] of trainable) ema.set(name, tf.variable(v, false));
  const optimizer = tf.train.adam(o.lr ?? 2e-4, 0.9, 0.999, 1e-8);
  let step = 0,
    seconds = 0,
    lossSum = 0;
  if (o.resume && existsSync(join(o.out, "train-state.json"))) {
    const st = loadTrainState(o.out);
    for (const [name, v] of trainable) {
      const w = st.raw[name];
      if (!w || w.shape.join("x") !== v.shape.join("x"))
        throw new UserError(
          `cannot resume from ${o.out}: its training state does not match the network (parameter '${name}')`,
          "bad_model",
          "--resume",
        );
      v.assign(w);
    }
    for (const [k, v] of Object.entries(st.ema)) ema.get(k)?.assign(v);
    await optimizer.setWeights(Object.entries(st.optimizer).map(([name, tensor]) => ({ name, tensor })));
    step = st.step;
    seconds = st.seconds;
    lossSum = st.losses;
  }
  const rng = createRng((o.seed ?? 0) * 7919 + step);
  const emaDecay = o.ema ?? 0.999;
  const clip = o.gradClip ?? 1;
  const warmup = o.warmup ?? 500;
  const every = o.checkpointEvery ?? 500;
  let last: number | null = null;
  const started = performance.now();
  const save = async () => {
    const elapsed = seconds + (performance.now() - started) / 1000;
    const info: PriorInfo = {
      format: "scorerecon-prior",
      version: 1,
      modality: o.modality,
      sde: o.sde,
      network: net.config,
      normalisation,
      imageSize: o.size,
      data: o.dataDescription,
      ...(dataFiles ? { dataFiles } : {}),
      augment,
      axes,
      steps: step,
      batch: o.batch,
      finalLoss: last,
      trainingSeconds: Math.round(elapsed),
      backend: o.backend,
      command: o.command,
      created: new Date().toISOString(),
    };
    await saveCheckpoint(o.out, net, new Map([...ema.entries(), ...Object.entries(fixed(net))]), info);
    const optState = Object.fromEntries((await optimizer.getWeights()).map((w) => [w.name, w.tensor]));
    await saveTrainState(o.out, {
      step,
      seconds: elapsed,
      losses: lossSum,
      raw: Object.fromEntries(trainable),
      ema: Object.fromEntries(ema),
      optimizer: optState,
    });
  };
  let interrupted = false;
  while (step < o.steps) {
    if (o.signal?.aborted) {
      interrupted = true;
      break;
    }
    (optimizer as unknown as { learningRate: number }).learningRate =
      (o.lr ?? 2e-4) * Math.min(1, (step + 1) / warmup);
    const x0 = makeBatch(data, o.size, o.batch, rng);
    const ts = Array.from({ length: o.batch }, () => 1e-5 + (1 - 1e-5) * rng.uniform());
    const noiseSeed = Math.floor(rng.uniform() * 2 ** 31);
    const lossValue = tf.tidy(() => {
      const z = tf.randomNormal(x0.shape, 0, 1, "float32", noiseSeed);
      const mean = tf.tensor4d(
        ts.map((t) => sde.meanCoef(t)),
        [o.batch, 1, 1, 1],
      );
      const std = tf.tensor4d(
        ts.map((t) => sde.std(t)),
        [o.batch, 1, 1, 1],
      );
      const xt = tf.add(tf.mul(x0, mean), tf.mul(z, std)) as tf.Tensor4D;
      const { value, grads } = tf.variableGrads(
        () => tf.mean(tf.square(tf.add(tf.mul(net.apply(xt, ts), std), z))) as tf.Scalar,
        vars,
      );
      // Clip by global norm.
      const norm = Math.sqrt(
        Object.values(grads).reduce((s, g) => s + tf.sum(tf.square(g)).dataSync()[0], 0),
      );
      const factor = norm > clip ? clip / norm : 1;
      const clipped = Object.fromEntries(
        Object.entries(grads).map(([k, g]) => [k, factor === 1 ? g : tf.mul(g, factor)]),
      );
      optimizer.applyGradients(clipped);
      for (const [name, v] of trainable) {
        const e = ema.get(name)!;
        e.assign(tf.add(tf.mul(e, emaDecay), tf.mul(v, 1 - emaDecay)));
      }
      return value.dataSync()[0];
    });
    x0.dispose();
    step++;
    last = lossValue;
    lossSum += lossValue;
    o.onStep?.(step, lossValue);
    if (step % every === 0) await save();
    await new Promise((r) => setImmediate(r));
  }
  await save();
  return {
    steps: step,
    finalLoss: last,
    seconds: seconds + (performance.now() - started) / 1000,
    interrupted,
    ...(init ? { init } : {}),
  };
}

/** One entry per source (the slabs of one file merged), with the 2-D slices each gave. */
function describeSources(sources: Omit<DataFile, "count">[], counts: number[]): DataFile[] {
  const out = new Map<string, DataFile>();
  sources.forEach((s, i) => {
    const key = `${s.source}@${s.slices ?? ""}`;
    const e = out.get(key);
    if (e) e.count += counts[i];
    else out.set(key, { ...s, count: counts[i] });
  });
  return [...out.values()];
}

/**
 * Starts from another prior's weights: every parameter of the same name and shape is copied, the
 * rest keep their fresh initialisation — the same network fine-tuned, or a deeper one grown from a
 * shallower one (its outer levels copied, the new inner levels learned).
 */
function initFrom(net: ScoreUNet, dir: string): { copied: number; of: number } {
  const source = loadPrior(dir).net;
  let copied = 0;
  for (const [name, v] of net.variables) {
    const w = source.variables.get(name);
    if (w && w.shape.join("x") === v.shape.join("x")) {
      v.assign(w);
      if (v.trainable) copied++;
    }
  }
  source.dispose();
  return { copied, of: net.trainable().length };
}

/** Non-trainable parameters (the fixed Fourier frequencies) by name. */
function fixed(net: ScoreUNet): tf.NamedTensorMap {
  return Object.fromEntries([...net.variables].filter(([, v]) => !v.trainable));
}

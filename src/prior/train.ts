/**
 * Denoising score matching (Vincent 2011) in continuous time (Song et al. 2021): for t ~ U(eps, 1),
 * x_t = mean(t) x_0 + std(t) z, the network minimises |std(t) s(x_t, t) + z|^2 averaged over
 * pixels — the lambda(t) = std(t)^2 weighting, which makes every noise level count alike. Adam with
 * linear warm-up, gradient clipping by global norm, and an exponential moving average of the
 * weights (what sampling uses), on flat arrays on this thread (src/prior/adam.ts). Every random
 * number (crops, flips, times, noise) is drawn here, from a generator seeded by (seed, step) alone
 * (stepSeed), so a training resumed from a checkpoint draws exactly the batches an uninterrupted
 * one would have drawn and ends with the same weights; the gradient is computed here, or
 * data-parallel here and on worker threads (src/prior/parallel.ts), the same update either way up
 * to float rounding; the next step's batch is drawn while the workers finish this one's.
 * Data and augmentation: src/prior/data.ts.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createRng, SEED_RANGE } from "../../operators/random.js";
import type { PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import type { Volume } from "../image/volume.js";
import { FlatAdam } from "./adam.js";
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
import {
  assignFlat,
  checkThreads,
  flatten,
  startGradients,
  type GradientTimes,
  type StepData,
} from "./parallel.js";
import { makeSde, type SdeConfig } from "./sde.js";
import { ScoreUNet, type UNetConfig } from "./unet.js";

/**
 * The range of every training number a user gives (`train` flags, `POST /api/models` fields):
 * crop size, batch, base channels (a multiple of 4), channel multipliers and levels, steps,
 * learning rate, checkpoint interval, seed, VE sigma_max; `sample` takes the same size.
 */
export const TRAIN_RANGES = {
  size: { min: 8, max: 512 },
  batch: { min: 1, max: 64 },
  channels: { min: 4, max: 256 },
  channelMult: { min: 1, max: 8 },
  levels: { min: 1, max: 6 },
  steps: { min: 1, max: 1_000_000 },
  lr: { min: 1e-10, max: 1 },
  checkpointEvery: { min: 1, max: 1_000_000 },
  seed: SEED_RANGE,
  sigmaMax: { min: 0.1, max: 1e4 },
} as const;

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
  /** Threads computing the batch's gradient (src/prior/parallel.ts): this one and threads - 1 workers; default 1. */
  threads?: number;
  command?: string;
  onStep?: (step: number, loss: number) => void;
  /** After each step, where its time went (bench/prior.ts prints it). */
  onProfile?: (times: StepTimes) => void;
  /** After each checkpoint (every `checkpointEvery` steps and the last), with `out` complete. */
  onCheckpoint?: (step: number) => void | Promise<void>;
  signal?: AbortSignal;
}

/** Where one step's time went on the main thread and its workers (ms). */
export interface StepTimes extends GradientTimes {
  /** Making the next step's batch (while the workers compute this one's gradient). */
  draw: number;
  /** Waiting for the workers' gradients after that. */
  wait: number;
  /** Clipping, Adam and the EMA. */
  update: number;
  /** The whole step, from handing its batch to the gradient to the EMA. */
  step: number;
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
  const threads = o.threads ?? 1;
  checkThreads(threads, o.batch);
  // The CT prior works in (HU + 1000) / 2000 whatever it learned from (images not in HU are
  // mapped to attenuation); the MRI prior in percentile-normalised intensity.
  const normalisation: Normalisation =
    o.modality === "ct" ? { kind: "hu" } : { kind: "percentile", percentile: 99.5 };
  const augment = o.augment ?? defaultAugmentations(o.modality);
  const axes = o.axes ?? ["axial"];
  const perVolume = o.volumes.map((v) => trainingSlices(o.modality, v, axes));
  const source: BatchSource = { modality: o.modality, slices: perVolume.flat(), phantom: o.phantom, augment };
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
  // The trainable parameters, their EMA and Adam's moments live here, flat (src/prior/adam.ts).
  let params: Float32Array = flatten(vars);
  let ema: Float32Array = params.slice();
  const adam = new FlatAdam(params.length);
  let step = 0,
    seconds = 0,
    lossSum = 0;
  if (o.resume && existsSync(join(o.out, "train-state.json"))) {
    const st = loadTrainState(o.out);
    const flat = (named: tf.NamedTensorMap) => {
      for (const [name, v] of trainable) {
        const w = named[name];
        if (!w || w.shape.join("x") !== v.shape.join("x"))
          throw new UserError(
            `cannot resume from ${o.out}: its training state does not match the network (parameter '${name}')`,
            "bad_model",
            "--resume",
          );
        v.assign(w);
      }
      return flatten(vars);
    };
    ema = flat(st.ema);
    params = flat(st.raw);
    adam.load(st.optimizer, vars, o.out);
    tf.dispose([...Object.values(st.raw), ...Object.values(st.ema), ...Object.values(st.optimizer)]);
    step = st.step;
    seconds = st.seconds;
    lossSum = st.losses;
  }
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
      threads,
      finalLoss: last,
      trainingSeconds: Math.round(elapsed),
      backend: o.backend,
      command: o.command,
      created: new Date().toISOString(),
    };
    // The network's variables hold the EMA for the checkpoint, then the raw weights.
    assignFlat(vars, ema);
    const emaState = Object.fromEntries(trainable.map(([name, v]) => [name, v.clone()]));
    await saveCheckpoint(
      o.out,
      net,
      new Map([...Object.entries(emaState), ...Object.entries(fixed(net))]),
      info,
    );
    assignFlat(vars, params);
    const optimizer = adam.named(vars);
    await saveTrainState(o.out, {
      step,
      seconds: elapsed,
      losses: lossSum,
      raw: Object.fromEntries(trainable),
      ema: emaState,
      optimizer,
    });
    tf.dispose([...Object.values(emaState), ...Object.values(optimizer)]);
    await o.onCheckpoint?.(step);
  };
  /** Step `s`'s examples (s counted from 0), all drawn here, so any thread count sees them. */
  const draw = (s: number): StepData => {
    const rng = createRng(stepSeed(o.seed ?? 0, s));
    const x0 = makeBatch(source, o.size, o.batch, rng);
    const ts = Array.from({ length: o.batch }, () => 1e-5 + (1 - 1e-5) * rng.uniform());
    const z = new Float32Array(x0.length);
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    return { x0, z, ts };
  };
  const gradients = startGradients(threads, net, o.backend);
  let interrupted = false;
  try {
    let next = draw(step);
    while (step < o.steps) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const times: GradientTimes = { shares: [], toWorker: [], back: [], sum: 0 };
      const t0 = performance.now();
      const pending = gradients.compute(next, params, times);
      const t1 = performance.now();
      // The next batch is made while the workers finish this one's gradient.
      if (step + 1 < o.steps) next = draw(step + 1);
      const t2 = performance.now();
      const { loss, grad } = await pending;
      const t3 = performance.now();
      // Clip by global norm.
      let squares = 0;
      for (let i = 0; i < grad.length; i++) squares += grad[i] * grad[i];
      const norm = Math.sqrt(squares);
      if (norm > clip) for (let i = 0; i < grad.length; i++) grad[i] *= clip / norm;
      adam.step(params, grad, (o.lr ?? 2e-4) * Math.min(1, (step + 1) / warmup));
      for (let i = 0; i < ema.length; i++) ema[i] = emaDecay * ema[i] + (1 - emaDecay) * params[i];
      const t4 = performance.now();
      o.onProfile?.({ ...times, draw: t2 - t1, wait: t3 - t2, update: t4 - t3, step: t4 - t0 });
      step++;
      last = loss;
      lossSum += loss;
      o.onStep?.(step, loss);
      if (step % every === 0) await save();
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    await gradients.close();
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

/**
 * The seed of one training step's generator: a function of the run's seed and the step only, so
 * the step's batch does not depend on where the run was (re)started. 32 bits, as createRng takes.
 */
export function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed | 0, 0x9e3779b1) + step) >>> 0;
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

/**
 * Denoising score matching (Vincent 2011) in continuous time (Song et al. 2021): for t ~ U(eps, 1),
 * x_t = mean(t) x_0 + std(t) z, the network minimises |std(t) s(x_t, t) + z|^2 averaged over
 * pixels — the lambda(t) = std(t)^2 weighting, which makes every noise level count alike. Adam with
 * linear warm-up, gradient clipping by global norm, and an exponential moving average of the
 * weights (what sampling uses), on flat arrays on this thread (src/prior/adam.ts). Every random
 * number (crops, flips, times, noise) is drawn here from the seeded generator; the gradient is
 * computed here or data-parallel over worker threads (src/prior/parallel.ts), the same update either
 * way up to float rounding. Data: slices of image files (any reader of src/io) and/or the procedural
 * phantoms, normalised as prior.json records, with random crops and horizontal and vertical flips.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createRng, type Rng } from "../../operators/random.js";
import { generatePhantom, type PhantomKind } from "../../phantoms/index.js";
import { UserError } from "../errors.js";
import { percentile } from "../image/stats.js";
import { sliceOf, type Volume } from "../image/volume.js";
import { FlatAdam } from "./adam.js";
import { tf } from "./backend.js";
import {
  loadPrior,
  loadTrainState,
  saveCheckpoint,
  saveTrainState,
  type Normalisation,
  type PriorInfo,
} from "./checkpoint.js";
import { assignFlat, checkThreads, flatten, startGradients, type StepData } from "./parallel.js";
import { makeSde, type SdeConfig } from "./sde.js";
import { ScoreUNet, type UNetConfig } from "./unet.js";

export interface TrainOptions {
  modality: "mri" | "ct";
  volumes: Volume[];
  phantom?: PhantomKind;
  dataDescription: string;
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
  /** Worker threads computing the batch's gradient (src/prior/parallel.ts); 1 (default): this thread. */
  threads?: number;
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

export function normalisationFor(modality: "mri" | "ct", v: Volume): Normalisation {
  return modality === "ct" && v.units === "HU" ? { kind: "hu" } : { kind: "percentile", percentile: 99.5 };
}

/** Applies the normalisation to one volume's voxels. */
export function normalise(data: Float32Array, n: Normalisation): Float32Array {
  if (n.kind === "hu") return data.map((hu) => (hu + 1000) / 2000);
  const p = percentile(data, (n.percentile ?? 99.5) / 100);
  const scale = p > 0 ? 1 / p : 1;
  return data.map((v) => v * scale);
}

const PHANTOM_SIZE = 256;

interface SliceSource {
  rows: number;
  cols: number;
  data: Float32Array;
}

/** One batch [B, S, S, 1] of random crops (zero-padded when a slice is smaller) and flips. */
function makeBatch(
  slices: SliceSource[],
  phantom: PhantomKind | undefined,
  s: number,
  b: number,
  rng: Rng,
): tf.Tensor4D {
  const out = new Float32Array(b * s * s);
  for (let k = 0; k < b; k++) {
    let src: SliceSource;
    if (phantom && (slices.length === 0 || rng.uniform() < 0.5)) {
      // Phantoms are drawn at the size reconstructions run at and cropped like real slices, so
      // the prior sees anatomy at its real scale.
      const p = generatePhantom(phantom, PHANTOM_SIZE, Math.floor(rng.uniform() * 2 ** 31));
      src = {
        rows: PHANTOM_SIZE,
        cols: PHANTOM_SIZE,
        data: normalise(p.data, p.units === "HU" ? { kind: "hu" } : { kind: "percentile", percentile: 99.5 }),
      };
    } else src = slices[rng.int(slices.length)];
    const r0 = src.rows > s ? rng.int(src.rows - s + 1) : 0;
    const c0 = src.cols > s ? rng.int(src.cols - s + 1) : 0;
    const flipH = rng.uniform() < 0.5,
      flipV = rng.uniform() < 0.5;
    const h = Math.min(s, src.rows),
      w = Math.min(s, src.cols);
    for (let r = 0; r < h; r++)
      for (let c = 0; c < w; c++) {
        const rr = flipV ? h - 1 - r : r,
          cc = flipH ? w - 1 - c : c;
        out[(k * s + r) * s + c] = src.data[(r0 + rr) * src.cols + c0 + cc];
      }
  }
  return tf.tensor4d(out, [b, s, s, 1]);
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
  const normalisation = o.volumes[0]
    ? normalisationFor(o.modality, o.volumes[0])
    : o.phantom === "ct-body"
      ? ({ kind: "hu" } as const)
      : ({ kind: "percentile", percentile: 99.5 } as const);
  const slices: SliceSource[] = [];
  for (const v of o.volumes) {
    const norm = normalise(v.data, normalisationFor(o.modality, v));
    for (let k = 0; k < v.slices; k++)
      slices.push({ rows: v.rows, cols: v.cols, data: sliceOf({ ...v, data: norm }, k).data });
  }
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
  };
  /** A step's examples, all drawn here from the seeded generator, so any thread count sees them. */
  const draw = (): StepData => {
    const x0 = makeBatch(slices, o.phantom, o.size, o.batch, rng);
    const ts = Array.from({ length: o.batch }, () => 1e-5 + (1 - 1e-5) * rng.uniform());
    const z = new Float32Array(x0.size);
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    const data = { x0: x0.dataSync() as Float32Array, z, ts };
    x0.dispose();
    return data;
  };
  const gradients = startGradients(threads, net, o.backend);
  let interrupted = false;
  try {
    let next = draw();
    while (step < o.steps) {
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const pending = gradients.compute(next, params);
      // The next batch is made while the workers compute this one's gradient.
      if (step + 1 < o.steps) next = draw();
      const { loss, grad } = await pending;
      // Clip by global norm.
      let squares = 0;
      for (let i = 0; i < grad.length; i++) squares += grad[i] * grad[i];
      const norm = Math.sqrt(squares);
      if (norm > clip) for (let i = 0; i < grad.length; i++) grad[i] *= clip / norm;
      adam.step(params, grad, (o.lr ?? 2e-4) * Math.min(1, (step + 1) / warmup));
      for (let i = 0; i < ema.length; i++) ema[i] = emaDecay * ema[i] + (1 - emaDecay) * params[i];
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

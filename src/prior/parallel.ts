/**
 * Data-parallel gradients for training (src/prior/train.ts). A step's batch (made on the main
 * thread, noise included) is split into `threads` shares; each share's gradient is that of its
 * *sum* of per-pixel losses divided by the whole batch's element count, so the shares' gradients
 * add up to the gradient of the batch's mean loss, whatever the split: the update depends on the
 * number of threads only through float rounding. The first share is computed on this thread, each
 * other on a worker thread of its own (src/prior/train-worker.ts: a copy of the network on its own
 * TensorFlow.js backend — wasm is single-threaded in Node, so each thread uses one core): `threads`
 * threads busy in all, and none idle while the others compute. Workers keep no state between
 * steps: each step they read the current weights from one SharedArrayBuffer and write their
 * gradient into one of their own, so nothing big is copied between threads or allocated per step,
 * the optimizer, the EMA and the checkpoints stay on this thread, and a training written with N
 * threads resumes with M.
 */
import { Worker } from "node:worker_threads";
import { fromErrorMessage, UserError, type ErrorMessage } from "../errors.js";
import { compiledModule } from "../package-root.js";
import { tf } from "./backend.js";
import type { SdeConfig } from "./sde.js";
import type { ScoreUNet, UNetConfig } from "./unet.js";

/** The range of `threads` (`train --threads`). */
export const THREADS = { min: 1, max: 64 } as const;

/** One step's training examples: x0 and the noise z, [B, S, S, 1] flat, and the times. */
export interface StepData {
  x0: Float32Array;
  z: Float32Array;
  ts: number[];
}

export interface Gradient {
  /** The batch's mean loss. */
  loss: number;
  /** d loss / d parameters, the trainable parameters' in creation order, flat. */
  grad: Float32Array;
}

/** Where one share's time went on its thread (ms). */
export interface ShareTimes {
  /** Setting the network's weights. */
  assign: number;
  /** The forward and backward pass. */
  pass: number;
  /** Copying the gradient out of the backend. */
  copy: number;
}

/** Where a step's gradient time went (ms): src/prior/train.ts adds the rest of the step. */
export interface GradientTimes {
  /** The shares in order, the first this thread's. */
  shares: ShareTimes[];
  /** Per worker: from posting its share to the worker's starting on it. */
  toWorker: number[];
  /** Per worker: from its reply to this thread's handling it (this thread may be busy meanwhile). */
  back: number[];
  /** Adding up the shares' gradients. */
  sum: number;
}

/**
 * The gradient of a share's sum of per-pixel losses |std(t) s(x_t, t) + z|^2 divided by `total`
 * (the whole batch's element count), written into `out`; returns that share's part of the
 * batch's mean loss. `times` (when given) gets the pass's and the copy's.
 */
export function shareGradient(
  net: ScoreUNet,
  vars: tf.Variable[],
  share: StepData,
  total: number,
  out: Float32Array,
  times?: ShareTimes,
): number {
  const b = share.ts.length;
  const size = Math.round(Math.sqrt(share.x0.length / b));
  let loss = 0;
  // The tidy returns nothing: it walks whatever it returns key by key, a gradient's 10^5 floats
  // included (tens of ms a step, and as much again in garbage collection).
  tf.tidy(() => {
    const t0 = performance.now();
    const x0 = tf.tensor4d(share.x0, [b, size, size, 1]);
    const z = tf.tensor4d(share.z, [b, size, size, 1]);
    const perSample = (f: (t: number) => number) => tf.tensor4d(share.ts.map(f), [b, 1, 1, 1]);
    const std = perSample((t) => net.sde.std(t));
    const mean = perSample((t) => net.sde.meanCoef(t));
    const xt = tf.add(tf.mul(x0, mean), tf.mul(z, std)) as tf.Tensor4D;
    const { value, grads } = tf.variableGrads(
      () => tf.div(tf.sum(tf.square(tf.add(tf.mul(net.apply(xt, share.ts), std), z))), total) as tf.Scalar,
      vars,
    );
    const t1 = performance.now();
    let offset = 0;
    for (const v of vars) {
      out.set(grads[v.name].dataSync(), offset);
      offset += v.size;
    }
    loss = value.dataSync()[0];
    if (times) [times.pass, times.copy] = [t1 - t0, performance.now() - t1];
  });
  return loss;
}

/**
 * Sets the network's trainable parameters to `weights` (`flatten`'s layout), then writes the
 * share's gradient into `out` (shareGradient): the share's loss and where its time went.
 */
export function weightsAndGradient(
  net: ScoreUNet,
  vars: tf.Variable[],
  weights: Float32Array,
  share: StepData,
  total: number,
  out: Float32Array,
): { loss: number; times: ShareTimes } {
  const t0 = performance.now();
  assignFlat(vars, weights);
  const times: ShareTimes = { assign: performance.now() - t0, pass: 0, copy: 0 };
  return { loss: shareGradient(net, vars, share, total, out, times), times };
}

/** Milliseconds comparable across threads (a worker's reply stamps are on this clock). */
export const now = () => performance.timeOrigin + performance.now();

/** The parameters' values, flat, in the order of `vars`. */
export function flatten(vars: tf.Variable[]): Float32Array {
  const out = new Float32Array(parameterCount(vars));
  let offset = 0;
  for (const v of vars) {
    out.set(v.dataSync() as Float32Array, offset);
    offset += v.size;
  }
  return out;
}

/** Sets the parameters from `flatten`'s layout. */
export function assignFlat(vars: tf.Variable[], values: Float32Array): void {
  tf.tidy(() => {
    let offset = 0;
    for (const v of vars) {
      v.assign(tf.tensor(values.subarray(offset, offset + v.size), v.shape));
      offset += v.size;
    }
  });
}

function parameterCount(vars: tf.Variable[]): number {
  return vars.reduce((n, v) => n + v.size, 0);
}

/** The batch's elements split into `n` contiguous shares as even as possible (sizes differ by <= 1). */
export function splitBatch(data: StepData, n: number): StepData[] {
  const b = data.ts.length;
  const pixels = data.x0.length / b;
  const shares: StepData[] = [];
  for (let k = 0, start = 0; k < n; k++) {
    const end = start + Math.floor(b / n) + (k < b % n ? 1 : 0);
    shares.push({
      x0: data.x0.slice(start * pixels, end * pixels),
      z: data.z.slice(start * pixels, end * pixels),
      ts: data.ts.slice(start, end),
    });
    start = end;
  }
  return shares;
}

/** Checks `threads` against its range and the batch (each thread needs an image of it). */
export function checkThreads(threads: number, batch: number): void {
  if (!Number.isInteger(threads) || threads < THREADS.min || threads > THREADS.max)
    throw new UserError(
      `--threads must be an integer from ${THREADS.min} to ${THREADS.max}, got ${threads}`,
      "bad_flag",
      "--threads",
    );
  if (threads > batch)
    throw new UserError(
      `--threads ${threads} is more than --batch ${batch}: each thread needs at least one image of the batch`,
      "bad_flag",
      "--threads",
    );
}

/** What a worker starts with (its workerData). */
export interface WorkerInit {
  backend: string;
  network: UNetConfig;
  sde: SdeConfig;
  /** The non-trainable parameters (the Fourier frequencies) by name: they come from the seed or --init. */
  fixed: Record<string, Float32Array>;
  /** The trainable parameters, `flatten`'s layout, shared by every worker: read at each request. */
  weights: SharedArrayBuffer;
  /** This worker's gradient, the same layout: written before each reply. */
  grad: SharedArrayBuffer;
}

export interface WorkerRequest {
  share: StepData;
  total: number;
  /** When it was posted (performance.timeOrigin + performance.now(), comparable across threads). */
  posted: number;
}

/** A worker's answer: its share's loss (its gradient is in its buffer) and when it ran. */
export interface GradientReply {
  kind: "gradient";
  loss: number;
  times: ShareTimes;
  /** The request's `posted`, when the worker received it and when it replied (the same clock). */
  posted: number;
  received: number;
  sent: number;
}

export type WorkerReply = GradientReply | ErrorMessage;

/** Computes a step's gradient, in this thread and over worker threads. */
export interface Gradients {
  /**
   * The gradient at `weights` (the trainable parameters, `flatten`'s layout). Its `grad` is this
   * object's buffer: valid until the next call. `times` (when given) gets where the time went.
   */
  compute(data: StepData, weights: Float32Array, times?: GradientTimes): Promise<Gradient>;
  /** Stops the workers (at once, wherever they are). */
  close(): Promise<void>;
}

/** `threads` = 1: this thread, no worker. Otherwise this thread and `threads` - 1 workers. */
export function startGradients(threads: number, net: ScoreUNet, backend: string): Gradients {
  return new ThreadGradients(threads, net, backend);
}

class ThreadGradients implements Gradients {
  private readonly vars: tf.Variable[];
  private readonly workers: Worker[];
  private readonly weights: Float32Array;
  /** Each worker's gradient (shared). */
  private readonly grads: Float32Array[];
  private readonly out: Float32Array;
  /** Set when a worker failed or exited: every later step fails with it. */
  private failure?: Error;
  private pending = new Map<Worker, { resolve: (r: GradientReply) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly threads: number,
    private readonly net: ScoreUNet,
    backend: string,
  ) {
    this.vars = net.trainable().map(([, v]) => v);
    const size = parameterCount(this.vars);
    const shared = () => new Float32Array(new SharedArrayBuffer(4 * size));
    this.weights = shared();
    this.grads = Array.from({ length: threads - 1 }, shared);
    this.out = new Float32Array(size);
    const fixed = Object.fromEntries(
      [...net.variables]
        .filter(([, v]) => !v.trainable)
        .map(([name, v]) => [name, v.dataSync() as Float32Array]),
    );
    const entry = compiledModule(new URL("./train-worker.js", import.meta.url));
    this.workers = this.grads.map((grad) => {
      const init: WorkerInit = {
        backend,
        network: net.config,
        sde: net.sde.config,
        fixed,
        weights: this.weights.buffer as SharedArrayBuffer,
        grad: grad.buffer as SharedArrayBuffer,
      };
      const w = new Worker(entry, { workerData: init });
      w.on("message", (m: WorkerReply) => {
        const p = this.pending.get(w);
        this.pending.delete(w);
        if (m.kind === "gradient") p?.resolve(m);
        else p?.reject(fromErrorMessage(m, "training worker: "));
      });
      w.on("error", (e) => this.fail(new Error(`training worker failed: ${e.message}`)));
      w.on("exit", (code) => this.fail(new Error(`training worker exited (code ${code})`)));
      return w;
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  async compute(data: StepData, weights: Float32Array, times?: GradientTimes): Promise<Gradient> {
    if (this.failure) throw this.failure;
    const total = data.x0.length;
    const [own, ...shares] = this.threads === 1 ? [data] : splitBatch(data, this.threads);
    if (shares.length) this.weights.set(weights);
    const arrived: number[] = [];
    const replies = shares.map(
      (share, k) =>
        new Promise<GradientReply>((resolve, reject) => {
          const w = this.workers[k];
          this.pending.set(w, {
            resolve: (m) => ((arrived[k] = now()), resolve(m)),
            reject,
          });
          const request: WorkerRequest = { share, total, posted: now() };
          w.postMessage(request, [share.x0.buffer as ArrayBuffer, share.z.buffer as ArrayBuffer]);
        }),
    );
    // Should this thread's share fail, the step fails with that error, not with the workers'.
    for (const r of replies) r.catch(() => {});
    // This thread's share while the workers compute theirs.
    const out = this.out;
    const mine = weightsAndGradient(this.net, this.vars, weights, own, total, out);
    let loss = mine.loss;
    const parts = await Promise.all(replies);
    const summed = now();
    // Added in share order, so a thread count gives the same bytes every time.
    parts.forEach((p, k) => {
      const g = this.grads[k];
      for (let i = 0; i < out.length; i++) out[i] += g[i];
      loss += p.loss;
    });
    if (times) {
      times.shares = [mine.times, ...parts.map((p) => p.times)];
      times.toWorker = parts.map((p) => p.received - p.posted);
      times.back = parts.map((p, k) => arrived[k] - p.sent);
      times.sum = now() - summed;
    }
    return { loss, grad: out };
  }

  async close(): Promise<void> {
    this.failure ??= new Error("the training workers were stopped");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Data-parallel gradients for training (src/prior/train.ts). A step's batch (made on the main
 * thread, noise included) is split into `threads` shares; each share's gradient is that of its
 * *sum* of per-pixel losses divided by the whole batch's element count, so the shares' gradients
 * add up to the gradient of the batch's mean loss, whatever the split: the update depends on the
 * number of threads only through float rounding. With one thread the gradient is computed in this
 * thread; with more, each share on a worker thread of its own (src/prior/train-worker.ts: a copy of
 * the network on its own TensorFlow.js backend — wasm is single-threaded in Node, so each worker
 * uses one core). Workers keep no state between steps: every step sends them the current weights,
 * so the optimizer, the EMA and the checkpoints stay on the main thread, and a training written
 * with N threads resumes with M.
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

/**
 * The gradient of a share's sum of per-pixel losses |std(t) s(x_t, t) + z|^2 divided by `total`
 * (the whole batch's element count), and that share's part of the batch's mean loss.
 */
export function shareGradient(net: ScoreUNet, vars: tf.Variable[], share: StepData, total: number): Gradient {
  const b = share.ts.length;
  const size = Math.round(Math.sqrt(share.x0.length / b));
  return tf.tidy(() => {
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
    const grad = new Float32Array(vars.reduce((n, v) => n + v.size, 0));
    let offset = 0;
    for (const v of vars) {
      grad.set(grads[v.name].dataSync(), offset);
      offset += v.size;
    }
    return { loss: value.dataSync()[0], grad };
  });
}

/** The parameters' values, flat, in the order of `vars`. */
export function flatten(vars: tf.Variable[]): Float32Array {
  const out = new Float32Array(vars.reduce((n, v) => n + v.size, 0));
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
}

export interface WorkerRequest {
  weights: Float32Array;
  share: StepData;
  total: number;
}

export type WorkerReply = ({ kind: "gradient" } & Gradient) | ErrorMessage;

/** Computes a step's gradient, in this thread or over worker threads. */
export interface Gradients {
  /** The gradient at `weights` (the trainable parameters, `flatten`'s layout). */
  compute(data: StepData, weights: Float32Array): Promise<Gradient>;
  /** Stops the workers (at once, wherever they are). */
  close(): Promise<void>;
}

/** `threads` = 1: this thread, no worker. Otherwise that many worker threads. */
export function startGradients(threads: number, net: ScoreUNet, backend: string): Gradients {
  const vars = net.trainable().map(([, v]) => v);
  if (threads === 1)
    return {
      compute: async (data, weights) => {
        assignFlat(vars, weights);
        return shareGradient(net, vars, data, data.x0.length);
      },
      close: async () => {},
    };
  return new WorkerGradients(threads, net, backend);
}

class WorkerGradients implements Gradients {
  private readonly workers: Worker[];
  /** Set when a worker failed or exited: every later step fails with it. */
  private failure?: Error;
  private pending = new Map<Worker, { resolve: (g: Gradient) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly threads: number,
    net: ScoreUNet,
    backend: string,
  ) {
    const fixed = Object.fromEntries(
      [...net.variables]
        .filter(([, v]) => !v.trainable)
        .map(([name, v]) => [name, v.dataSync() as Float32Array]),
    );
    const init: WorkerInit = { backend, network: net.config, sde: net.sde.config, fixed };
    const entry = compiledModule(new URL("./train-worker.js", import.meta.url));
    this.workers = Array.from({ length: threads }, () => {
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

  async compute(data: StepData, weights: Float32Array): Promise<Gradient> {
    if (this.failure) throw this.failure;
    const total = data.x0.length;
    const parts = await Promise.all(
      splitBatch(data, this.threads).map(
        (share, k) =>
          new Promise<Gradient>((resolve, reject) => {
            const w = this.workers[k];
            this.pending.set(w, { resolve, reject });
            const request: WorkerRequest = { weights, share, total };
            w.postMessage(request, [share.x0.buffer as ArrayBuffer, share.z.buffer as ArrayBuffer]);
          }),
      ),
    );
    // Summed in share order, so a thread count gives the same bytes every time.
    const grad = parts[0].grad;
    let loss = parts[0].loss;
    for (const p of parts.slice(1)) {
      loss += p.loss;
      for (let i = 0; i < grad.length; i++) grad[i] += p.grad[i];
    }
    return { loss, grad };
  }

  async close(): Promise<void> {
    this.failure ??= new Error("the training workers were stopped");
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

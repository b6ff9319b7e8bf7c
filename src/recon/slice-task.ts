/**
 * One unit of reconstruction work: one method on one slice's measurements. The pipeline runs these
 * in the calling thread or in worker processes (src/recon/pool.ts); a worker process of the
 * distributed queue runs the same function. Everything in a task is plain data (structured-clone
 * safe), so the forward model is rebuilt from the acquisition where the task runs.
 */
import { realToComplex } from "../../operators/complex.js";
import { nmse, psnr, ssim } from "../metrics/index.js";
import { forwardModel, simulateSlice, type Acquisition, type ForwardModel } from "./acquisition.js";
import { findMethod, type MethodRequest } from "./methods.js";

/**
 * What a task reconstructs from: measurements, or (a retrospective study) the ground-truth image
 * and the noise seed, the measurements then being simulated where the task runs — the calling
 * thread neither computes nor holds them.
 */
export type SliceInput =
  | { kind: "measured"; /** Measurements in operator units. */ y: Float32Array }
  | { kind: "simulated"; /** The image in operator units. */ x: Float32Array; seed: number };

export interface SliceTask {
  acquisition: Acquisition;
  maskFromFile?: Uint8Array;
  method: MethodRequest;
  input: SliceInput;
  rows: number;
  cols: number;
  /** The slice's index in the request (names the task; score-based methods seed slice k with seed + k). */
  slice: number;
  /** Where the caller chose the prior (ReconRequest.priorField). */
  priorField?: string;
  /** The ground truth (output units), when there is one: the result is scored where it is made. */
  truth?: Truth;
}

export interface Truth {
  image: Float32Array;
  /** PSNR's and SSIM's data range (over the whole volume). */
  dataRange: number;
  /** The image is in HU: results convert back from attenuation (see fromOperatorUnits). */
  hu: boolean;
}

export interface Metrics {
  psnr: number;
  ssim: number;
  nmse: number;
}

export interface SliceOutput {
  /** In operator units (the pipeline converts CT attenuation back to HU). */
  image: Float32Array;
  /** Per-pixel posterior std (score-based methods with samples > 1). */
  std?: Float32Array;
  seconds: number;
  /** Against the task's truth, when it had one. */
  metrics?: Metrics;
  /** Already in the request's slice store (a queue worker put it there). */
  stored?: boolean;
}

/** Image in operator units, as the operator's input vector (CT in HU: attenuation relative to water). */
export function toOperatorUnits(image: Float32Array, acq: Acquisition, hu: boolean): Float32Array {
  if (acq.modality === "mri") return realToComplex(image);
  if (hu) return image.map((v) => Math.max(0, 1 + v / 1000));
  return new Float32Array(image);
}

/** Operator units back to the image's: HU from attenuation relative to water, else unchanged. */
export function fromOperatorUnits(image: Float32Array, hu: boolean): Float32Array {
  return hu ? image.map((mu) => 1000 * (mu - 1)) : image;
}

/** A result (output units) against the ground truth. */
export function scoreSlice(truth: Truth, image: Float32Array, rows: number, cols: number): Metrics {
  const gt = { rows, cols, data: truth.image };
  const test = { rows, cols, data: image };
  const { dataRange } = truth;
  return { psnr: psnr(gt, test, dataRange), ssim: ssim(gt, test, { dataRange }), nmse: nmse(gt, test) };
}

let cached: { key: string; mask?: Uint8Array; model: ForwardModel } | undefined;

/** The forward model of an acquisition, rebuilt only when the acquisition changes. */
function modelFor(acq: Acquisition, mask?: Uint8Array): ForwardModel {
  const key = JSON.stringify(acq);
  const sameMask = (a?: Uint8Array, b?: Uint8Array) =>
    a === b || (!!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]));
  if (!cached || cached.key !== key || !sameMask(cached.mask, mask))
    cached = { key, mask, model: forwardModel(acq, mask) };
  return cached.model;
}

export function runSliceTask(
  task: SliceTask,
  onIteration?: (done: number, total: number) => void,
  signal?: AbortSignal,
): SliceOutput {
  const model = modelFor(task.acquisition, task.maskFromFile);
  const { input } = task;
  const y = input.kind === "measured" ? input.y : simulateSlice(model, input.x, input.seed);
  const t0 = performance.now();
  const out = findMethod(task.method.name).run(
    {
      model,
      y,
      rows: task.rows,
      cols: task.cols,
      slice: task.slice,
      priorField: task.priorField,
      onIteration,
      signal,
    },
    task.method.params,
  );
  const seconds = (performance.now() - t0) / 1000;
  const result = out instanceof Float32Array ? { image: out, seconds } : { ...out, seconds };
  if (!task.truth) return result;
  const image = fromOperatorUnits(result.image, task.truth.hu);
  return { ...result, metrics: scoreSlice(task.truth, image, task.rows, task.cols) };
}

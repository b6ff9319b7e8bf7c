/**
 * The reconstruction pipeline: the one place that turns an image volume (retrospective study) or
 * measurements (prospective data) plus an acquisition and a list of methods into reconstructed
 * volumes, metrics and timings. The CLI, the server and the workers all call `reconstruct`.
 *
 * Units: the operators act on "operator units". MRI images are used as they are (a real image
 * becomes complex with zero phase; results are magnitudes). CT volumes in Hounsfield units are
 * converted to attenuation relative to water, mu/mu_water = 1 + HU/1000 (clipped at 0), because a
 * line integral of HU has no physical meaning (air would have negative attenuation); results go
 * back to HU. Other CT images (phantoms in [0, 1]) are taken as attenuation already; a CT image
 * with values below -500 is taken to be in HU whatever its metadata says.
 */
import { makeVolume, sliceOf, type Volume } from "../image/volume.js";
import { valueRange } from "../image/stats.js";
import { summarise } from "../metrics/index.js";
import { UserError } from "../errors.js";
import { describeAcquisition, forwardModel, type Acquisition } from "./acquisition.js";
import { findMethod, type MethodRequest } from "./methods.js";
import { initEngine } from "../prior/engine.js";
import { SlicePool, type SliceRunner } from "./pool.js";
import type { SliceKey, SliceStore } from "./slice-store.js";
import { checkPrior } from "./score-methods.js";
import {
  fromOperatorUnits,
  runSliceTask,
  scoreSlice,
  toOperatorUnits,
  type Metrics,
  type SliceInput,
  type SliceOutput,
  type SliceTask,
  type Truth,
} from "./slice-task.js";

export interface MethodResult {
  method: string;
  params: MethodRequest["params"];
  volume: Volume;
  /** Reconstruction time summed over slices (simulation excluded). */
  seconds: number;
  /** Means over slices, when ground truth exists. */
  metrics?: Metrics;
  perSlice?: (Metrics & { slice: number; seconds: number })[];
  /** Per-pixel posterior standard deviation (score-based methods with samples > 1), same units. */
  uncertainty?: Volume;
}

export interface ReconResult {
  acquisition: Acquisition;
  /**
   * Methods that failed while running (any other error than a cancellation), with the error:
   * the other methods still ran and are in `results`. When every method fails, `reconstruct`
   * throws the first error instead.
   */
  failed: { method: string; error: unknown }[];
  /** Data range used for PSNR/SSIM (ground-truth max - min over the volume). */
  dataRange?: number;
  results: MethodResult[];
  mask?: Uint8Array;
}

export interface ProgressEvent {
  slice: number;
  slices: number;
  method: string;
  /** Iterations done / total within this method on this slice (1/1 for direct methods). */
  done: number;
  total: number;
  /** The last event of a slice: its result is done (and stored). */
  finished: boolean;
  /** The slice was finished in an earlier run and taken from the store. */
  resumed: boolean;
  /** With the last event of a slice, when ground truth exists: its metrics and seconds. */
  metrics?: Metrics & { seconds: number };
  /** With the last event of a slice: the result in output units (HU for CT in HU). */
  image?: Float32Array;
}

export interface ReconRequest {
  acquisition: Acquisition;
  methods: MethodRequest[];
  /** Ground truth, for a retrospective study: measurements are simulated from it. */
  volume?: Volume;
  /** Prospective data: one measurement array per slice, and the output volume's shape/metadata. */
  measurements?: { data: Float32Array[]; like: Volume };
  maskFromFile?: Uint8Array;
  /** Seed of the measurement noise (slice k uses seed + k). */
  seed?: number;
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Finished slices: taken from here instead of recomputed, and every new one put here. */
  store?: SliceStore;
  /** Worker processes running slices at once (default 1: in this thread). */
  workers?: number;
  /** Where to run the slices (the server's worker processes, or a queue); takes precedence over `workers`. */
  pool?: SliceRunner;
  /** Where the caller chose the prior (`--model`, or a job's `model`): the words of prior errors. */
  priorField?: string;
}

/**
 * CT values in HU: said by the volume, or evident from the values (attenuation cannot be
 * negative, so a CT image that goes below -500 is in HU).
 */
export const inHounsfieldUnits = (v: Volume, acq: Acquisition) =>
  acq.modality === "ct" && (v.units === "HU" || v.data.some((x) => x < -500));

function volumeRange(v: Volume): number {
  const { min, max } = valueRange(v.data);
  return max - min;
}

export async function reconstruct(req: ReconRequest): Promise<ReconResult> {
  const { acquisition: acq } = req;
  const like = req.volume ?? req.measurements?.like;
  if (!like) throw new RangeError("reconstruct needs a volume or measurements");
  const model = forwardModel(acq, req.maskFromFile);
  const rows = like.rows,
    cols = like.cols,
    slices = like.slices;
  // A wrong prior (modality, unreadable) fails before any slice is reconstructed.
  const priors = req.methods.filter((m) => findMethod(m.name).needsPrior);
  for (const m of priors) checkPrior(String(m.params.model ?? ""), acq.modality, req.priorField);
  const workers = Math.max(1, Math.floor(req.workers ?? 1));
  if (!req.pool && workers === 1 && priors.length) await initEngine();
  const seed = req.seed ?? 0;
  const hu = inHounsfieldUnits(like, acq);
  if (req.measurements) {
    const expected = model.op.output.shape.reduce((a, b) => a * b, 1) * (model.op.output.complex ? 2 : 1);
    req.measurements.data.forEach((y, k) => {
      if (y.length !== expected)
        throw new UserError(
          `the measurements of slice ${k} have ${y.length} values, but ${describeAcquisition(acq)} expects ${expected} (${model.op.output.shape.join("x")}${model.op.output.complex ? " complex" : ""})`,
          "bad_measurements",
          "measurements",
        );
    });
  }
  /**
   * Slice k's input, made when its task is: the measurements of a retrospective study are
   * simulated by the task (in its worker), so they are never all computed here or held at once.
   */
  const inputOf = (k: number): SliceInput =>
    req.volume
      ? { kind: "simulated", x: toOperatorUnits(sliceOf(req.volume, k).data, acq, hu), seed: seed + k }
      : { kind: "measured", y: req.measurements!.data[k] };
  const dataRange = req.volume ? volumeRange(req.volume) : undefined;
  /** Slice k's ground truth, copied (a view would carry the whole volume to the worker). */
  const truthOf = (k: number): Truth | undefined =>
    req.volume && dataRange !== undefined
      ? { image: sliceOf(req.volume, k).data.slice(), dataRange, hu }
      : undefined;
  const ownPool =
    !req.pool && workers > 1 ? new SlicePool(slicePoolSize(workers, slices, req.methods.length)) : undefined;
  const pool = req.pool ?? ownPool;
  // A method that fails stops its own slices, not the other methods' (a cancellation stops all).
  const failed = new Map<string, unknown>();
  // Stops every running task: on the caller's cancel, and when the job fails otherwise (a slice
  // that cannot be stored), so that no task goes on after it and nothing reports progress.
  const stop = new AbortController();
  const signal = req.signal ? AbortSignal.any([req.signal, stop.signal]) : stop.signal;
  try {
    // Every (method, slice) task, finished ones taken from the store; with a pool, N at a time.
    const outputs = await mapConcurrent(
      req.methods.flatMap((method) => Array.from({ length: slices }, (_, slice) => ({ method, slice }))),
      pool?.size ?? 1,
      async ({ method, slice }) => {
        if (failed.has(method.name)) return undefined;
        const key: SliceKey = { acquisition: acq, method, slice, input: inputOf(slice) };
        const event = { slice, slices, method: method.name, resumed: false, finished: false };
        const report = (done: number, total: number) => {
          if (!signal.aborted) req.onProgress?.({ ...event, done, total });
        };
        const finish = (output: SliceOutput, resumed: boolean) => {
          const image = fromOperatorUnits(output.image, hu);
          // Scored by the task where it ran; here only when it was not (a resumed or queued slice).
          const truth = output.metrics ? undefined : truthOf(slice);
          const scored = output.metrics ?? (truth && scoreSlice(truth, image, rows, cols));
          const metrics = scored && { ...scored, seconds: output.seconds };
          req.onProgress?.({
            ...event,
            done: 1,
            total: 1,
            resumed,
            finished: true,
            image,
            ...(metrics ? { metrics } : {}),
          });
          return { output, image, metrics };
        };
        const stored = req.store?.get(key);
        if (stored) return finish(stored, true);
        const truth = truthOf(slice);
        const task: SliceTask = {
          acquisition: acq,
          maskFromFile: req.maskFromFile,
          method,
          input: key.input,
          rows,
          cols,
          slice,
          ...(req.priorField ? { priorField: req.priorField } : {}),
          ...(truth ? { truth } : {}),
        };
        signal.throwIfAborted();
        let output: SliceOutput;
        try {
          output = pool ? await pool.run(task, report, signal) : runSliceTask(task, report, signal);
        } catch (err) {
          if (signal.aborted) throw err;
          if (!failed.has(method.name)) failed.set(method.name, err);
          return undefined;
        }
        if (!output.stored) await req.store?.put(key, output);
        // Let the event loop breathe between slices (server progress, Ctrl-C).
        await new Promise((r) => setImmediate(r));
        signal.throwIfAborted();
        return finish(output, false);
      },
      stop,
    );
    if (failed.size === req.methods.length) throw failed.values().next().value;
    const results: MethodResult[] = [];
    req.methods.forEach((request, m) => {
      if (!failed.has(request.name))
        results.push(assemble(request, outputs.slice(m * slices, (m + 1) * slices) as Finished[], like, hu));
    });
    return {
      acquisition: acq,
      failed: [...failed].map(([method, error]) => ({ method, error })),
      dataRange,
      results,
      mask: model.mask,
    };
  } finally {
    await ownPool?.close();
  }
}

/**
 * The worker processes `reconstruct` starts for `workers` (more than one) on a study of `slices`
 * slices and `methods` methods: no more than it has tasks. The engine line names the same count.
 */
export function slicePoolSize(workers: number, slices: number, methods: number): number {
  return Math.max(1, Math.min(Math.floor(workers), slices * methods));
}

/**
 * Runs f over items with at most `limit` at once; results in input order. The first f that fails
 * aborts `stop` (with its error) and no lane starts another item.
 */
async function mapConcurrent<T, R>(
  items: T[],
  limit: number,
  f: (item: T) => Promise<R>,
  stop: AbortController,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length && !stop.signal.aborted) {
      const i = next++;
      try {
        out[i] = await f(items[i]);
      } catch (err) {
        if (!stop.signal.aborted) stop.abort(err);
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

type Finished = { output: SliceOutput; image: Float32Array; metrics?: Metrics & { seconds: number } };

/** One method's slices into a volume (HU for CT in HU), with their metrics and the means. */
function assemble(request: MethodRequest, outputs: Finished[], like: Volume, hu: boolean): MethodResult {
  const { rows, cols, slices } = like;
  const init = {
    spacing: like.spacing,
    modality: like.modality,
    units: hu ? "HU" : like.units,
    affine: like.affine,
  };
  const out = makeVolume(slices, rows, cols, undefined, { ...init, dicom: like.dicom });
  const uncertainty = outputs.some((o) => o.output.std)
    ? makeVolume(slices, rows, cols, undefined, init)
    : undefined;
  const perSlice: NonNullable<MethodResult["perSlice"]> = [];
  outputs.forEach(({ output: o, image, metrics }, k) => {
    out.data.set(image, k * rows * cols);
    // A standard deviation scales but does not shift: HU std = 1000 x attenuation std.
    if (o.std) uncertainty!.data.set(hu ? o.std.map((v) => 1000 * v) : o.std, k * rows * cols);
    if (metrics) perSlice.push({ slice: k, ...metrics });
  });
  const { psnr, ssim, nmse } = summarise(perSlice);
  return {
    method: request.name,
    params: request.params,
    volume: out,
    seconds: outputs.reduce((s, o) => s + o.output.seconds, 0),
    ...(uncertainty ? { uncertainty } : {}),
    ...(perSlice.length ? { metrics: { psnr: psnr.mean, ssim: ssim.mean, nmse: nmse.mean }, perSlice } : {}),
  };
}

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
import { realToComplex } from "../../operators/complex.js";
import { addSinogramGaussianNoise, addSinogramPoissonNoise } from "../../operators/ct.js";
import { addKspaceNoise } from "../../operators/mri.js";
import { makeVolume, sliceOf, type Volume } from "../image/volume.js";
import { nmse, psnr, ssim } from "../metrics/index.js";
import { forwardModel, type Acquisition, type ForwardModel } from "./acquisition.js";
import { findMethod, type MethodRequest } from "./methods.js";
import { initBackend } from "../prior/backend.js";

export interface Metrics {
  psnr: number;
  ssim: number;
  nmse: number;
}

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
  /** Data range used for PSNR/SSIM (ground-truth max - min over the volume). */
  dataRange?: number;
  results: MethodResult[];
  /** The measurements used, one per slice (simulated or given). */
  measurements: Float32Array[];
  mask?: Uint8Array;
}

export interface ProgressEvent {
  slice: number;
  slices: number;
  method: string;
  /** Iterations done / total within this method on this slice (1/1 for direct methods). */
  done: number;
  total: number;
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
}

/**
 * CT values in HU: said by the volume, or evident from the values (attenuation cannot be
 * negative, so a CT image that goes below -500 is in HU).
 */
export const inHounsfieldUnits = (v: Volume, acq: Acquisition) =>
  acq.modality === "ct" && (v.units === "HU" || v.data.some((x) => x < -500));

/** Image in operator units, as the operator's input vector. */
export function toOperatorUnits(image: Float32Array, acq: Acquisition, hu: boolean): Float32Array {
  if (acq.modality === "mri") return realToComplex(image);
  if (hu) return image.map((v) => Math.max(0, 1 + v / 1000));
  return new Float32Array(image);
}

function fromOperatorUnits(image: Float32Array, hu: boolean): Float32Array {
  return hu ? image.map((mu) => 1000 * (mu - 1)) : image;
}

/** y = A x + noise for one slice in operator units. */
export function simulateSlice(model: ForwardModel, x: Float32Array, seed: number): Float32Array {
  const acq = model.acquisition;
  const y = model.op.forward(x);
  if (acq.modality === "mri") return addKspaceNoise(y, model.mask!, acq.noiseSigma, seed);
  const n = acq.noise;
  if (n.kind === "gaussian") return addSinogramGaussianNoise(y, n.sigma, seed);
  if (n.kind === "poisson") return addSinogramPoissonNoise(y, { I0: n.I0, seed });
  return y;
}

function volumeRange(v: Volume): number {
  let lo = Infinity,
    hi = -Infinity;
  for (const x of v.data) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return hi - lo;
}

export async function reconstruct(req: ReconRequest): Promise<ReconResult> {
  const { acquisition: acq } = req;
  const like = req.volume ?? req.measurements?.like;
  if (!like) throw new RangeError("reconstruct needs a volume or measurements");
  const model = forwardModel(acq, req.maskFromFile);
  if (req.methods.some((m) => findMethod(m.name).needsPrior)) await initBackend();
  const rows = like.rows,
    cols = like.cols,
    slices = like.slices;
  const seed = req.seed ?? 0;
  const hu = inHounsfieldUnits(like, acq);
  const measurements: Float32Array[] = [];
  for (let k = 0; k < slices; k++) {
    if (req.volume) {
      const x = toOperatorUnits(sliceOf(req.volume, k).data, acq, hu);
      measurements.push(simulateSlice(model, x, seed + k));
    } else measurements.push(req.measurements!.data[k]);
  }
  const dataRange = req.volume ? volumeRange(req.volume) : undefined;
  const results: MethodResult[] = [];
  for (const request of req.methods) {
    const method = findMethod(request.name);
    const out = makeVolume(slices, rows, cols, undefined, {
      spacing: like.spacing,
      modality: like.modality,
      units: hu ? "HU" : like.units,
      affine: like.affine,
      dicom: like.dicom,
    });
    let seconds = 0;
    let uncertainty: Volume | undefined;
    const perSlice: NonNullable<MethodResult["perSlice"]> = [];
    for (let k = 0; k < slices; k++) {
      const report = (done: number, total: number) =>
        req.onProgress?.({ slice: k, slices, method: request.name, done, total });
      const t0 = performance.now();
      const output = method.run(
        { model, y: measurements[k], rows, cols, onIteration: report, signal: req.signal },
        request.params,
      );
      const image = output instanceof Float32Array ? output : output.image;
      if (!(output instanceof Float32Array)) {
        uncertainty ??= makeVolume(slices, rows, cols, undefined, {
          spacing: like.spacing,
          modality: like.modality,
          units: hu ? "HU" : like.units,
          affine: like.affine,
        });
        // A standard deviation scales but does not shift: HU std = 1000 x attenuation std.
        uncertainty.data.set(hu ? output.std.map((v) => 1000 * v) : output.std, k * rows * cols);
      }
      const dt = (performance.now() - t0) / 1000;
      seconds += dt;
      report(1, 1);
      const result = fromOperatorUnits(image, hu);
      out.data.set(result, k * rows * cols);
      if (req.volume && dataRange !== undefined) {
        const gt = sliceOf(req.volume, k);
        const test = { rows, cols, data: result };
        perSlice.push({
          slice: k,
          seconds: dt,
          psnr: psnr(gt, test, dataRange),
          ssim: ssim(gt, test, { dataRange }),
          nmse: nmse(gt, test),
        });
      }
      // Let the event loop breathe between slices (server progress, Ctrl-C).
      await new Promise((r) => setImmediate(r));
    }
    const mean = (key: keyof Metrics) => perSlice.reduce((s, m) => s + m[key], 0) / perSlice.length;
    results.push({
      method: request.name,
      params: request.params,
      volume: out,
      seconds,
      ...(uncertainty ? { uncertainty } : {}),
      ...(perSlice.length
        ? { metrics: { psnr: mean("psnr"), ssim: mean("ssim"), nmse: mean("nmse") }, perSlice }
        : {}),
    });
  }
  return { acquisition: acq, dataRange, results, measurements, mask: model.mask };
}

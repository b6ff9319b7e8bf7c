/**
 * An acquisition says how measurements were (or are to be) taken: everything needed to rebuild the
 * forward operator A and to simulate y = A x + noise. It is what `simulate` writes beside its
 * measurements (MEAS.json) and what `reconstruct --measurements` reads back.
 */
import { ParallelBeamProjector } from "../../operators/ct.js";
import type { LinearOperator } from "../../operators/linear-operator.js";
import { samplingMask, type MaskSpec } from "../../operators/masks.js";
import { MriCartesianOperator } from "../../operators/mri.js";
import { addNoise, type NoiseModel } from "../../operators/noise.js";
import { SEED_RANGE } from "../../operators/random.js";
import { UserError } from "../errors.js";

export type Modality = "mri" | "ct";

/**
 * The acquisition defaults, declared once: the CLI's operator flags, the job spec, `GET /api/masks`
 * and the OpenAPI document take them from here (fastMRI's 4x with a 0.08 centre, random mask; 60
 * CT views).
 */
export const ACQUISITION_DEFAULTS = {
  acceleration: 4,
  centerFraction: 0.08,
  mask: "random",
  seed: 0,
  noiseSigma: 0,
  views: 60,
} as const;

/**
 * The range of every acquisition number a user gives (CLI flags and job fields alike). Noise is
 * bounded so that measurements stay finite in float32.
 */
export const ACQUISITION_RANGES = {
  acceleration: { min: 1, max: 64 },
  seed: SEED_RANGE,
  views: { min: 1, max: 4096 },
  detectors: { min: 1, max: 16384 },
  noiseSigma: { min: 0, max: 1e9 },
  I0: { min: 1, max: 1e15 },
} as const;

export interface MriAcquisition {
  modality: "mri";
  rows: number;
  cols: number;
  /** How the mask was made; absent when it came from a file. */
  mask: MaskSpec | { file: string };
  /** Std of each of re/im of the complex k-space noise (0: none). */
  noiseSigma: number;
}

export type CtNoise = NoiseModel;

export interface CtAcquisition {
  modality: "ct";
  /** Image size N (N x N). */
  size: number;
  views: number;
  detectors: number;
  noise: CtNoise;
}

export type Acquisition = MriAcquisition | CtAcquisition;

/** The side of an image an acquisition describes. */
const SIDE = { min: 1, max: 16384 } as const;

/**
 * Checks an acquisition read from a file (a measurement's MEAS.json): each number a finite
 * number, an integer where it counts, in its range; a UserError names `where` and the field.
 */
export function checkAcquisition(a: Acquisition, where: string, field: string): Acquisition {
  const num = (name: string, v: unknown, r: { min: number; max: number }, integer = false) => {
    if (
      typeof v === "number" &&
      Number.isFinite(v) &&
      (!integer || Number.isInteger(v)) &&
      v >= r.min &&
      v <= r.max
    )
      return;
    throw new UserError(
      `${where}: acquisition.${name} must be ${integer ? "an integer" : "a number"} from ${r.min} to ${r.max}, got ${JSON.stringify(v)}`,
      "bad_measurements",
      field,
    );
  };
  const R = ACQUISITION_RANGES;
  if (a.modality === "mri") {
    num("rows", a.rows, SIDE, true);
    num("cols", a.cols, SIDE, true);
    if (a.mask && "kind" in a.mask) {
      num("mask.acceleration", a.mask.acceleration, R.acceleration);
      num("mask.centerFraction", a.mask.centerFraction, { min: 0, max: 1 });
      num("mask.seed", a.mask.seed, R.seed, true);
    }
    num("noiseSigma", a.noiseSigma, R.noiseSigma);
  } else {
    num("size", a.size, SIDE, true);
    num("views", a.views, R.views, true);
    num("detectors", a.detectors, R.detectors, true);
    if (a.noise?.kind === "gaussian") num("noise.sigma", a.noise.sigma, R.noiseSigma);
    if (a.noise?.kind === "poisson") num("noise.I0", a.noise.I0, R.I0);
  }
  return a;
}

/** The operator with its noise model and its materialised mask (MRI). */
export interface ForwardModel {
  acquisition: Acquisition;
  op: LinearOperator;
  /** The acquisition's measurement noise (MRI's k-space sigma is Gaussian). */
  noise: NoiseModel;
  /** [rows, cols] 0/1, MRI only. */
  mask?: Uint8Array;
}

export function defaultDetectors(size: number): number {
  return Math.ceil(Math.SQRT2 * size);
}

/**
 * Builds A. For MRI with a mask file the caller passes the mask read from it; generated masks are
 * made here from their spec.
 */
export function forwardModel(acq: Acquisition, maskFromFile?: Uint8Array): ForwardModel {
  if (acq.modality === "mri") {
    const mask = "file" in acq.mask ? maskFromFile : samplingMask(acq.rows, acq.cols, acq.mask);
    if (!mask) throw new RangeError("the MRI acquisition names a mask file but no mask was given");
    const noise: NoiseModel =
      acq.noiseSigma > 0 ? { kind: "gaussian", sigma: acq.noiseSigma } : { kind: "none" };
    return { acquisition: acq, op: new MriCartesianOperator(acq.rows, acq.cols, mask), noise, mask };
  }
  const op = new ParallelBeamProjector({ size: acq.size, views: acq.views, detectors: acq.detectors });
  return { acquisition: acq, op, noise: acq.noise };
}

/** y = A x + noise for one slice in operator units (the noise seeded by `seed`). */
export function simulateSlice(model: ForwardModel, x: Float32Array, seed: number): Float32Array {
  return addNoise(model.op, model.op.forward(x), model.noise, seed);
}

/** One line describing the acquisition, for tables, logs and DICOM DerivationDescription. */
export function describeAcquisition(acq: Acquisition): string {
  if (acq.modality === "mri") {
    const m =
      "file" in acq.mask
        ? `mask from ${acq.mask.file}`
        : `${acq.mask.kind} mask ${acq.mask.acceleration}x, centre ${acq.mask.centerFraction}, seed ${acq.mask.seed}`;
    return `MRI single-coil Cartesian ${acq.rows}x${acq.cols}, ${m}${acq.noiseSigma > 0 ? `, k-space noise sigma ${acq.noiseSigma}` : ""}`;
  }
  const n = acq.noise;
  const noise =
    n.kind === "gaussian"
      ? `, Gaussian noise sigma ${n.sigma}`
      : n.kind === "poisson"
        ? `, Poisson noise I0 ${n.I0}`
        : "";
  return `CT parallel beam ${acq.size}x${acq.size}, ${acq.views} views over [0, pi), ${acq.detectors} detectors${noise}`;
}

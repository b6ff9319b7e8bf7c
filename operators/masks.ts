/**
 * Cartesian k-space sampling masks.
 *
 * 1-D masks select phase-encode lines, which are image columns (every row of a selected column is
 * sampled). Their parameters mean what they mean in fastMRI's `subsample.py`:
 * - centerFraction: num_low = round(cols * centerFraction) fully sampled central columns starting at
 *   pad = (cols - num_low + 1) // 2, so the DC column cols // 2 is always inside;
 * - acceleration R: about cols / R columns are sampled in all, centre included.
 * `random` draws the outer columns uniformly without replacement. Unlike fastMRI's RandomMaskFunc
 * (an independent Bernoulli draw per column, whose realised acceleration scatters by ~10% at 256
 * columns) it samples exactly round(cols / R) columns, so a stated acceleration is the realised one.
 * `equispaced` is fastMRI's EquispacedMaskFractionFunc: the outer spacing is adjusted for the centre
 * so that the overall acceleration is R, with a random offset.
 * `vd2d` is a 2-D variable-density random mask (for 3-D acquisitions with two phase-encode axes):
 * a fully sampled centred ellipse covering centerFraction of each axis, and the remaining
 * round(rows * cols / R) - centre points drawn without replacement with density (1 - r)^2 in the
 * normalised radius r (Lustig, Donoho & Pauly 2007).
 * All draws use the seeded RNG: the same seed gives the same mask.
 */
import { createRng } from "./random.js";

export const MASK_KINDS = ["random", "equispaced", "vd2d"] as const;
export type MaskKind = (typeof MASK_KINDS)[number];

export interface MaskSpec {
  kind: MaskKind;
  acceleration: number;
  centerFraction: number;
  seed: number;
}

/** Columns in the fully sampled centre, and where it starts (fastMRI). */
export function centerLines(cols: number, centerFraction: number): { start: number; count: number } {
  const count = Math.round(cols * centerFraction);
  return { start: Math.floor((cols - count + 1) / 2), count };
}

/** A 1-D phase-encode line mask (1 = sampled) of length `cols`. */
export function lineMask(
  kind: "random" | "equispaced",
  cols: number,
  spec: Omit<MaskSpec, "kind">,
): Uint8Array {
  const { acceleration: r, centerFraction, seed } = spec;
  checkSpec(r, centerFraction);
  const rng = createRng(seed);
  const mask = new Uint8Array(cols);
  const { start, count: numLow } = centerLines(cols, centerFraction);
  mask.fill(1, start, start + numLow);
  if (kind === "random") {
    const outer: number[] = [];
    for (let c = 0; c < cols; c++) if (!mask[c]) outer.push(c);
    const want = Math.min(outer.length, Math.max(0, Math.round(cols / r) - numLow));
    // Partial Fisher-Yates: the first `want` entries become a uniform sample without replacement.
    for (let i = 0; i < want; i++) {
      const j = i + rng.int(outer.length - i);
      [outer[i], outer[j]] = [outer[j], outer[i]];
      mask[outer[i]] = 1;
    }
  } else {
    // fastMRI EquispacedMaskFractionFunc.calculate_acceleration_mask.
    const adjusted = numLow * r === cols ? r : (r * (numLow - cols)) / (numLow * r - cols);
    if (!(adjusted > 0)) return mask;
    const offset = rng.int(Math.max(1, Math.round(adjusted)));
    for (let p = offset; p < cols - 1; p += adjusted) mask[Math.round(p)] = 1;
  }
  return mask;
}

/** A full [rows, cols] mask (Uint8Array, 1 = sampled) of any kind. */
export function samplingMask(rows: number, cols: number, spec: MaskSpec): Uint8Array {
  if (spec.kind === "vd2d") return variableDensityMask(rows, cols, spec);
  return expandLineMask(lineMask(spec.kind, cols, spec), rows);
}

/** Repeats a column mask on every row. */
export function expandLineMask(line: Uint8Array, rows: number): Uint8Array {
  const cols = line.length;
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(line, r * cols);
  return out;
}

function variableDensityMask(rows: number, cols: number, spec: MaskSpec): Uint8Array {
  checkSpec(spec.acceleration, spec.centerFraction);
  const rng = createRng(spec.seed);
  const mask = new Uint8Array(rows * cols);
  const cy = Math.floor(rows / 2),
    cx = Math.floor(cols / 2);
  const ay = Math.max(0.5, (rows * spec.centerFraction) / 2),
    ax = Math.max(0.5, (cols * spec.centerFraction) / 2);
  let inCentre = 0;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const dy = (r - cy) / ay,
        dx = (c - cx) / ax;
      if (dy * dy + dx * dx <= 1) {
        mask[r * cols + c] = 1;
        inCentre++;
      }
    }
  const want = Math.max(0, Math.round((rows * cols) / spec.acceleration) - inCentre);
  // Weighted sampling without replacement (Efraimidis & Spirakis 2006): keep the `want` largest
  // keys u^(1/w).
  const keys: { key: number; index: number }[] = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (mask[i]) continue;
      const rad = Math.min(1, Math.hypot((r - cy) / (rows / 2), (c - cx) / (cols / 2)) / Math.SQRT2);
      const w = Math.max(1e-6, (1 - rad) ** 2);
      keys.push({ key: Math.log(Math.max(rng.uniform(), Number.MIN_VALUE)) / w, index: i });
    }
  keys.sort((a, b) => b.key - a.key);
  for (let k = 0; k < Math.min(want, keys.length); k++) mask[keys[k].index] = 1;
  return mask;
}

/** Total samples / sampled samples. */
export function realisedAcceleration(mask: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) n++;
  return mask.length / n;
}

function checkSpec(acceleration: number, centerFraction: number): void {
  if (!(acceleration >= 1)) throw new RangeError(`acceleration must be >= 1, got ${acceleration}`);
  if (!(centerFraction >= 0 && centerFraction <= 1))
    throw new RangeError(`center fraction must be in [0, 1], got ${centerFraction}`);
}

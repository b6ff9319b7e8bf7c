/**
 * How the viewer writes a job's slice range: end-exclusive, as the API, the CLI and the job form
 * ("from", "to (excl.)") take it. `[1, 3)` is slices 1 and 2.
 */
export function sliceRange([a, b]: readonly [number, number]): string {
  return `[${a}, ${b})`;
}

/** `[1, 3) · 2 slices`: the range and how many slices it holds. */
export function sliceCount(range: readonly [number, number]): string {
  const n = Math.max(0, range[1] - range[0]);
  return `${sliceRange(range)} · ${n} slice${n === 1 ? "" : "s"}`;
}

/** The p-quantile (p in [0, 1]) of the values: element floor(p n) of the sorted copy. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float32Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

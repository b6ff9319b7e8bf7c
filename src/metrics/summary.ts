/**
 * Per-slice scores summarised: the mean and the (population) standard deviation over slices of
 * PSNR, SSIM, NMSE and, where every slice has them, seconds. Every mean/std table of the project
 * (the pipeline's per-method metrics, the evaluation table, the server's job metrics) is this.
 */

export interface SliceScores {
  psnr: number;
  ssim: number;
  nmse: number;
  seconds?: number;
}

export interface MeanStd {
  mean: number;
  /** Population standard deviation (divided by the number of slices). */
  std: number;
}

export interface ScoreSummary {
  slices: number;
  psnr: MeanStd;
  ssim: MeanStd;
  nmse: MeanStd;
  /** When every slice has its seconds. */
  seconds?: MeanStd;
}

/** Mean and standard deviation in slice order (NaN for no slices). */
function meanStd(xs: readonly number[]): MeanStd {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length) };
}

export function summarise(perSlice: readonly SliceScores[]): ScoreSummary {
  const of = (key: keyof SliceScores) => meanStd(perSlice.map((s) => s[key] ?? NaN));
  const timed = perSlice.length > 0 && perSlice.every((s) => s.seconds !== undefined);
  return {
    slices: perSlice.length,
    psnr: of("psnr"),
    ssim: of("ssim"),
    nmse: of("nmse"),
    ...(timed ? { seconds: of("seconds") } : {}),
  };
}

/**
 * `summarise`: mean and population standard deviation over slices, in slice order; seconds only
 * when every slice has them; the pipeline's per-method metrics and the evaluation table are it.
 */
import { describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { summarise } from "../../src/metrics/index.js";
import { parseMethods } from "../../src/recon/methods.js";
import { reconstruct } from "../../src/recon/reconstruct.js";
import { evaluate } from "../../src/recon/evaluate.js";

describe("summarise", () => {
  it("gives each metric's mean and population std over the slices", () => {
    const s = summarise([
      { psnr: 30, ssim: 0.8, nmse: 0.01, seconds: 1 },
      { psnr: 34, ssim: 0.9, nmse: 0.03, seconds: 3 },
    ]);
    expect(s.slices).toBe(2);
    expect(s.psnr).toEqual({ mean: 32, std: 2 });
    expect(s.ssim.mean).toBeCloseTo(0.85, 12);
    expect(s.ssim.std).toBeCloseTo(0.05, 12);
    expect(s.nmse.mean).toBeCloseTo(0.02, 12);
    expect(s.seconds).toEqual({ mean: 2, std: 1 });
  });

  it("leaves seconds out unless every slice has them; no slices give NaN", () => {
    expect(summarise([{ psnr: 1, ssim: 1, nmse: 1 }]).seconds).toBeUndefined();
    const none = summarise([]);
    expect(none.slices).toBe(0);
    expect(none.psnr.mean).toBeNaN();
    expect(none.seconds).toBeUndefined();
  });

  it("is what the pipeline and the evaluation table report", async () => {
    const n = 32;
    const data = new Float32Array(3 * n * n);
    for (let k = 0; k < 3; k++) data.set(generatePhantom("brain", n, 40 + k).data, k * n * n);
    const volume = makeVolume(3, n, n, data, { modality: "MR" });
    const acquisition = {
      modality: "mri" as const,
      rows: n,
      cols: n,
      mask: { kind: "random" as const, acceleration: 4, centerFraction: 0.08, seed: 0 },
      noiseSigma: 0,
    };
    const methods = parseMethods("zero-filled", "mri");
    const r = (await reconstruct({ acquisition, methods, volume })).results[0];
    const s = summarise(r.perSlice!);
    expect(r.metrics).toEqual({ psnr: s.psnr.mean, ssim: s.ssim.mean, nmse: s.nmse.mean });

    const [row] = await evaluate(
      [{ volume, labels: ["a", "b", "c"] }],
      [{ name: "mri", modality: "mri", acquisition: () => acquisition }],
      () => methods,
    );
    const e = summarise(row.images);
    expect(row.psnr).toEqual([e.psnr.mean, e.psnr.std]);
    expect(row.nmse).toEqual([e.nmse.mean, e.nmse.std]);
    expect(row.psnr[0]).toBe(s.psnr.mean);
    expect(row.psnr[1]).toBeGreaterThan(0);
  });
});

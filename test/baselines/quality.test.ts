/** The classical baselines on the 256x256 modified Shepp-Logan, run through the one pipeline. */
import { describe, expect, it } from "vitest";
import { sheppLogan } from "../../phantoms/ellipses.js";
import { makeVolume } from "../../src/image/volume.js";
import type { Acquisition } from "../../src/recon/acquisition.js";
import { parseMethods } from "../../src/recon/methods.js";
import { reconstruct } from "../../src/recon/reconstruct.js";

const volume = makeVolume(1, 256, 256, sheppLogan(256));

async function psnrs(acquisition: Acquisition, list: string): Promise<Record<string, number>> {
  const r = await reconstruct({ acquisition, methods: parseMethods(list, acquisition.modality), volume });
  return Object.fromEntries(r.results.map((x) => [x.method, x.metrics!.psnr]));
}

describe("classical baselines on the 256 Shepp-Logan", () => {
  it("CT 23 views: TV beats FBP by >= 5 dB, SIRT beats FBP", async () => {
    const p = await psnrs(
      { modality: "ct", size: 256, views: 23, detectors: 363, noise: { kind: "none" } },
      "fbp,sirt,tv",
    );
    expect(p.tv - p.fbp).toBeGreaterThanOrEqual(5);
    expect(p.sirt).toBeGreaterThan(p.fbp);
  });

  it("MRI 4x (random, centre 0.08): CS-TV and CS-wavelet beat zero-filled by >= 5 dB", async () => {
    const p = await psnrs(
      {
        modality: "mri",
        rows: 256,
        cols: 256,
        mask: { kind: "random", acceleration: 4, centerFraction: 0.08, seed: 0 },
        noiseSigma: 0,
      },
      "zero-filled,tv,wavelet",
    );
    expect(p.tv - p["zero-filled"]).toBeGreaterThanOrEqual(5);
    expect(p.wavelet - p["zero-filled"]).toBeGreaterThanOrEqual(5);
  });

  it("CT in HU: reconstructs in HU and TV still wins under Poisson noise", async () => {
    const hu = makeVolume(
      1,
      256,
      256,
      sheppLogan(256).map((v) => 1000 * v - 1000),
      { modality: "CT", units: "HU" },
    );
    const acquisition: Acquisition = {
      modality: "ct",
      size: 256,
      views: 60,
      detectors: 363,
      noise: { kind: "poisson", I0: 1e5 },
    };
    const r = await reconstruct({ acquisition, methods: parseMethods("fbp,tv", "ct"), volume: hu, seed: 1 });
    const [fbp, tv] = r.results;
    // Air outside the head stays near -1000 HU.
    expect(Math.abs(tv.volume.data[5 * 256 + 5] + 1000)).toBeLessThan(50);
    expect(tv.metrics!.psnr).toBeGreaterThan(fbp.metrics!.psnr + 3);
  });
});

/** The score-based methods through the one pipeline, with a tiny prior trained here. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { randomEllipses } from "../../phantoms/ellipses.js";
import { makeVolume } from "../../src/image/volume.js";
import { initBackend } from "../../src/prior/backend.js";
import { initEngine } from "../../src/prior/engine.js";
import { trainPrior } from "../../src/prior/train.js";
import type { Acquisition } from "../../src/recon/acquisition.js";
import { parseMethods } from "../../src/recon/methods.js";
import { reconstruct } from "../../src/recon/reconstruct.js";

let prior: string;
/** Noise-free single-coil MRI with a random column mask on square images. */
const mriAcquisition = (
  size: number,
  acceleration: number,
  centerFraction: number,
  seed: number,
): Acquisition => ({
  modality: "mri",
  rows: size,
  cols: size,
  mask: { kind: "random", acceleration, centerFraction, seed },
  noiseSigma: 0,
});
beforeAll(async () => {
  await initBackend("wasm");
  prior = mkdtempSync(join(tmpdir(), "scorerecon-score-"));
  await trainPrior({
    modality: "mri",
    volumes: [],
    phantom: "ellipses",
    dataDescription: "ellipses",
    size: 16,
    steps: 60,
    batch: 8,
    out: prior,
    sde: { name: "ve", sigmaMin: 0.01, sigmaMax: 5 },
    network: { channels: 8, channelMult: [1, 2], resBlocks: 1, fourierScale: 16, scaleBySigma: true },
    lr: 2e-3,
    warmup: 10,
    backend: "wasm",
  });
}, 60_000);

describe("score-based reconstruction methods", () => {
  it("score (dds), song and langevin run through the pipeline on MRI data", async () => {
    const volume = makeVolume(1, 24, 24, randomEllipses(24, 3));
    const methods = parseMethods(
      `score:model=${prior}:steps=8,song:model=${prior}:steps=6,langevin:model=${prior}:steps=6`,
      "mri",
    );
    const r = await reconstruct({
      acquisition: mriAcquisition(24, 2, 0.2, 1),
      methods,
      volume,
    });
    for (const m of r.results) {
      expect(m.volume.data.length).toBe(24 * 24);
      expect(m.volume.data.every(Number.isFinite)).toBe(true);
    }
    // MRI results are magnitudes in the data's units.
    for (const m of r.results) expect(m.volume.data.every((v) => v >= 0)).toBe(true);
  });

  it("samples=K returns the posterior mean and a per-pixel standard deviation map", async () => {
    const volume = makeVolume(1, 24, 24, randomEllipses(24, 5));
    const r = await reconstruct({
      acquisition: mriAcquisition(24, 3, 0.1, 2),
      methods: parseMethods(`dds:model=${prior}:steps=6:samples=3`, "mri"),
      volume,
    });
    const u = r.results[0].uncertainty!;
    expect(u.data.length).toBe(24 * 24);
    expect(u.data.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
    expect(u.data.some((v) => v > 0)).toBe(true);
    const single = await reconstruct({
      acquisition: r.acquisition,
      methods: parseMethods(`dds:model=${prior}:steps=6:samples=1`, "mri"),
      volume,
    });
    expect(single.results[0].uncertainty).toBeUndefined();
  });

  it("start=tv runs TV first, counted as one step of the sampler's progress", async () => {
    const totals = new Set<number>();
    await reconstruct({
      acquisition: mriAcquisition(24, 4, 0.1, 3),
      methods: parseMethods(
        `score:model=${prior}:steps=3:start=tv,dds:model=${prior}:steps=3:start=ls`,
        "mri",
      ),
      volume: makeVolume(1, 24, 24, randomEllipses(24, 7)),
      onProgress: (e) => {
        if (!e.finished) totals.add(e.method === "score" ? e.total : -e.total);
      },
    });
    expect(totals).toEqual(new Set([4, -3]));
  });

  it("each slice of a volume draws its own noise (seed + slice), reproducibly", async () => {
    const one = randomEllipses(24, 8);
    const run = () =>
      reconstruct({
        acquisition: mriAcquisition(24, 4, 0.1, 0),
        methods: parseMethods(`score:model=${prior}:steps=4:seed=5`, "mri"),
        volume: makeVolume(2, 24, 24, new Float32Array([...one, ...one])),
      });
    const [a, b] = [await run(), await run()];
    const [s0, s1] = [a.results[0].volume.data.subarray(0, 576), a.results[0].volume.data.subarray(576)];
    expect(Array.from(s1)).not.toEqual(Array.from(s0));
    expect(Array.from(b.results[0].volume.data)).toEqual(Array.from(a.results[0].volume.data));
  });

  it("a prior of the wrong modality is a clear error", async () => {
    const volume = makeVolume(1, 24, 24, randomEllipses(24, 4));
    await expect(
      reconstruct({
        acquisition: { modality: "ct", size: 24, views: 10, detectors: 34, noise: { kind: "none" } },
        methods: parseMethods(`score:model=${prior}:steps=4`, "ct"),
        volume,
      }),
    ).rejects.toThrow(/is a MRI prior; this is CT data/);
  });

  it("a prior trained on larger images than the input is a clear error, before any slice runs", async () => {
    const volume = makeVolume(
      2,
      12,
      12,
      new Float32Array([...randomEllipses(12, 4), ...randomEllipses(12, 5)]),
    );
    const events: unknown[] = [];
    await expect(
      reconstruct({
        acquisition: mriAcquisition(12, 2, 0.2, 0),
        methods: parseMethods(`tv,score:model=${prior}:steps=4`, "mri"),
        volume,
        onProgress: (e) => events.push(e),
      }),
    ).rejects.toThrow(/trained on 16x16 images; this image is 12x12/);
    // The classical method listed first did not run either.
    expect(events).toEqual([]);
  });

  it("measurements of the wrong shape for the operator are a clear error", async () => {
    const like = makeVolume(1, 24, 24);
    await expect(
      reconstruct({
        acquisition: { modality: "ct", size: 24, views: 10, detectors: 34, noise: { kind: "none" } },
        methods: parseMethods("fbp", "ct"),
        measurements: { data: [new Float32Array(10 * 30)], like },
      }),
    ).rejects.toThrow(/measurements of slice 0 have 300 values, but .* expects 340 \(10x34\)/);
  });

  it("worker threads draw the same posterior samples as the calling thread (seeded)", async () => {
    // On the default engine, ONNX Runtime: 2 threads per evaluation in the calling thread, 1 in each of 2 workers.
    expect(await initEngine()).toBe("onnx");
    const volume = makeVolume(
      2,
      24,
      24,
      new Float32Array([...randomEllipses(24, 5), ...randomEllipses(24, 6)]),
    );
    const run = (workers: number) =>
      reconstruct({
        acquisition: mriAcquisition(24, 2, 0.2, 0),
        methods: parseMethods(`score:model=${prior}:steps=6:seed=3`, "mri"),
        volume,
        workers,
      });
    const [a, b] = [await run(1), await run(2)];
    expect(Array.from(b.results[0].volume.data)).toEqual(Array.from(a.results[0].volume.data));
  }, 60_000);
});

/** The score-based methods through the one pipeline, with a tiny prior trained here. */
import { copyFileSync, mkdtempSync } from "node:fs";
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

  it("a study smaller than the prior's training images runs (the network is fully convolutional)", async () => {
    const volume = makeVolume(1, 12, 12, randomEllipses(12, 4));
    const r = await reconstruct({
      acquisition: mriAcquisition(12, 2, 0.2, 0),
      methods: parseMethods(`score:model=${prior}:steps=3:samples=1`, "mri"),
      volume,
    });
    expect(r.results[0].volume.data.every(Number.isFinite)).toBe(true);
  });

  it("the fewest steps each sampler takes, and more samples than one network evaluation takes, give finite results", async () => {
    const volume = makeVolume(1, 16, 16, randomEllipses(16, 6));
    expect(() => parseMethods("song:steps=1", "mri")).toThrow(/steps must be an integer in \[2, 2000\]/);
    for (const [sampler, steps] of [
      ["dds", 1],
      ["song", 2],
      ["langevin", 1],
    ] as const) {
      const r = await reconstruct({
        acquisition: mriAcquisition(16, 2, 0.2, 0),
        methods: parseMethods(`${sampler}:model=${prior}:steps=${steps}:samples=6`, "mri"),
        volume,
      });
      expect(r.results[0].volume.data.every(Number.isFinite), sampler).toBe(true);
      expect(r.results[0].uncertainty!.data.every(Number.isFinite), sampler).toBe(true);
    }
  });

  it("a method that fails while running leaves the other methods to finish", async () => {
    const broken = mkdtempSync(join(tmpdir(), "scorerecon-broken-"));
    for (const f of ["model.json", "prior.json"]) copyFileSync(join(prior, f), join(broken, f));
    const r = await reconstruct({
      acquisition: mriAcquisition(16, 2, 0.2, 0),
      methods: parseMethods(`score:model=${broken}:steps=2,tv:iterations=5`, "mri"),
      volume: makeVolume(2, 16, 16, new Float32Array([...randomEllipses(16, 1), ...randomEllipses(16, 2)])),
    });
    expect(r.results.map((m) => m.method)).toEqual(["tv"]);
    expect(r.failed.map((f) => f.method)).toEqual(["score"]);
    expect(String(r.failed[0].error)).toMatch(/has no weights\.bin/);
    // Every method failing is the error itself.
    await expect(
      reconstruct({
        acquisition: mriAcquisition(16, 2, 0.2, 0),
        methods: parseMethods(`score:model=${broken}:steps=2`, "mri"),
        volume: makeVolume(1, 16, 16, randomEllipses(16, 1)),
      }),
    ).rejects.toThrow(/has no weights\.bin/);
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

  it("worker processes draw the same posterior samples as the calling process (seeded)", async () => {
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

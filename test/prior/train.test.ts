import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend, tf } from "../../src/prior/backend.js";
import { loadPrior } from "../../src/prior/checkpoint.js";
import { trainPrior, type TrainOptions } from "../../src/prior/train.js";

const tiny = (out: string, steps: number, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  modality: "mri",
  volumes: [],
  phantom: "ellipses",
  dataDescription: "ellipses phantoms",
  size: 16,
  steps,
  batch: 8,
  out,
  sde: { name: "ve", sigmaMin: 0.01, sigmaMax: 5 },
  network: { channels: 8, channelMult: [1, 2], resBlocks: 1, fourierScale: 16, scaleBySigma: true },
  lr: 2e-3,
  warmup: 20,
  ema: 0.99,
  checkpointEvery: 100,
  backend: "wasm",
  seed: 1,
  ...extra,
});

beforeAll(async () => {
  await initBackend("wasm");
});

describe("denoising score matching training", () => {
  // 60 steps, not 240: the loss of the last 10 is 0.2-0.26 of the first 10's (seeds 1-3), so
  // the bound of 0.5 has twice that margin. 24 s on a shared 2-core machine (load 8): 90 s is 3.7x.
  it(
    "lowers the DSM loss, and the checkpoint reloads to identical outputs",
    { timeout: 90_000 },
    async () => {
      const out = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
      const losses: number[] = [];
      const r = await trainPrior(tiny(out, 60, { warmup: 10, onStep: (_, l) => losses.push(l) }));
      expect(r.steps).toBe(60);
      expect(losses).toHaveLength(60);
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      // Untrained the loss is ~1 per pixel (the score is zero); it must fall to well under half.
      expect(mean(losses.slice(-10))).toBeLessThan(0.5 * mean(losses.slice(0, 10)));
      const info = JSON.parse(readFileSync(join(out, "prior.json"), "utf8"));
      expect(info).toMatchObject({
        format: "scorerecon-prior",
        modality: "mri",
        steps: 60,
        imageSize: 16,
        sde: { name: "ve" },
      });
      const a = loadPrior(out).net;
      const b = loadPrior(out).net;
      const x = tf.randomNormal([2, 24, 20, 1], 0, 1, "float32", 3) as tf.Tensor4D;
      const ya = a.apply(x, [0.3, 0.7]).dataSync();
      const yb = b.apply(x, [0.3, 0.7]).dataSync();
      expect(Array.from(ya)).toEqual(Array.from(yb));
      expect(ya.length).toBe(2 * 24 * 20);
      expect(Array.from(ya).some((v) => v !== 0)).toBe(true);
    },
  );

  // 80 steps in all: 26 s on a shared 2-core machine (load 8).
  it("resumes from its training state and stops cleanly when interrupted", { timeout: 90_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
    const stop = new AbortController();
    const r1 = await trainPrior(
      tiny(out, 200, { onStep: (s) => s === 30 && stop.abort(), signal: stop.signal }),
    );
    expect(r1).toMatchObject({ steps: 30, interrupted: true });
    expect(JSON.parse(readFileSync(join(out, "prior.json"), "utf8")).steps).toBe(30);
    const r2 = await trainPrior(tiny(out, 50, { resume: true }));
    expect(r2).toMatchObject({ steps: 50, interrupted: false });
  });

  // 2 x 8 steps of a tiny network: a few seconds.
  it("k steps then a resume to N give the weights of N uninterrupted steps (every step's randomness is (seed, step)'s)", async () => {
    const whole = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
    const split = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
    await trainPrior(tiny(whole, 8, { warmup: 4 }));
    await trainPrior(tiny(split, 3, { warmup: 4 }));
    await trainPrior(tiny(split, 8, { warmup: 4, resume: true }));
    const weights = (dir: string, file: string) => {
      const b = readFileSync(join(dir, file));
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    for (const file of ["weights.bin", "train-state.bin"]) {
      const a = weights(whole, file);
      const b = weights(split, file);
      expect(b.length).toBe(a.length);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst, file).toBeLessThanOrEqual(1e-6);
    }
  });

  it("--init grows a deeper network from a shallower prior: fitting parameters copied, new ones fresh", async () => {
    const small = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
    await trainPrior(tiny(small, 20));
    const deep = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
    const network = {
      channels: 8,
      channelMult: [1, 2, 2],
      resBlocks: 1,
      fourierScale: 16,
      scaleBySigma: true,
    };
    // lr 0: the copied weights stay as they were, so the checkpoint shows what was copied.
    const r = await trainPrior(tiny(deep, 1, { network, init: small, lr: 0 }));
    const [sa, sb] = [loadPrior(small).net, loadPrior(deep).net];
    const [a, b] = [sa.variables, sb.variables];
    // Equal up to the EMA's rounding (0.99 w + 0.01 w).
    const same = (name: string) => {
      const x = a.get(name)!.dataSync();
      const y = b.get(name)!.dataSync();
      return x.every((v, i) => Math.abs(v - y[i]) < 1e-6);
    };
    expect(same("down0/res0/conv0/w")).toBe(true);
    expect(same("up0/res0/conv0/w")).toBe(true);
    expect(a.has("down2/res0/conv0/w")).toBe(false);
    expect(b.has("down2/res0/conv0/w")).toBe(true);
    // Every tensor of the shallow prior fits the deeper network; the new level's do not exist there.
    expect(r.init).toEqual({ copied: sa.trainable().length, of: sb.trainable().length });
  });

  it("a truncated, missing or mismatched checkpoint is a clear error", async () => {
    const out = mkdtempSync(join(tmpdir(), "scorerecon-prior-"));
    await trainPrior(tiny(out, 2));
    const model = JSON.parse(readFileSync(join(out, "model.json"), "utf8"));
    model.modelTopology.network.channels = 16;
    writeFileSync(join(out, "model.json"), JSON.stringify(model));
    expect(() => loadPrior(out)).toThrow(/does not match its network|bytes/);
    truncateSync(join(out, "weights.bin"), 100);
    expect(() => loadPrior(out)).toThrow(/weights\.bin has 100 bytes/);
    expect(() => loadPrior(join(out, "nope"))).toThrow(/does not exist/);
  });
});

/**
 * Closing a worker pool while a worker evaluates a prior: terminating a thread inside a native
 * ONNX Runtime call aborts the whole process, so the pool cancels the task and waits for it.
 */
import { describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { initEngine } from "../../src/prior/engine.js";
import { parseMethods } from "../../src/recon/methods.js";
import { SlicePool } from "../../src/recon/pool.js";
import { reconstruct } from "../../src/recon/reconstruct.js";

describe("SlicePool.close", () => {
  it("cancels a running score task and terminates the worker only once it has stopped", async () => {
    expect(await initEngine()).toBe("onnx");
    const size = 96;
    const pool = new SlicePool(1);
    let closing: Promise<void> | undefined;
    const run = reconstruct({
      acquisition: {
        modality: "mri",
        rows: size,
        cols: size,
        mask: { kind: "random", acceleration: 4, centerFraction: 0.08, seed: 0 },
        noiseSigma: 0,
      },
      methods: parseMethods("score:steps=2000:sigmaStart=0", "mri"),
      volume: makeVolume(1, size, size, generatePhantom("brain", size, 1).data),
      pool,
      onProgress: (e) => {
        if (e.done >= 2) closing ??= pool.close();
      },
    });
    // The worker answered "cancelled" after its current step; it was not killed mid-evaluation.
    await expect(run).rejects.toThrow(/cancelled/);
    await closing;
  });
});

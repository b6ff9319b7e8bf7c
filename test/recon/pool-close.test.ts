/**
 * Closing a worker pool while a worker evaluates a prior on ONNX Runtime: the worker is a process
 * of its own, so killing it mid-evaluation fails its task and leaves the calling process running
 * (terminating a worker *thread* inside a native ONNX Runtime call aborts the whole process).
 */
import { describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { initEngine } from "../../src/prior/engine.js";
import { parseMethods } from "../../src/recon/methods.js";
import { SlicePool } from "../../src/recon/pool.js";
import { reconstruct } from "../../src/recon/reconstruct.js";

describe("SlicePool.close", () => {
  it("stops a running score task at once and the calling process goes on", async () => {
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
    await expect(run).rejects.toThrow(/the worker pool was closed/);
    await closing;
    // This process is still here and can evaluate a prior itself.
    expect(await initEngine()).toBe("onnx");
  });
});

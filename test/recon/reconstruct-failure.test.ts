/**
 * A reconstruction that fails for a reason other than a cancel (the store cannot write a finished
 * slice: a full disk) stops its other slice tasks on the shared runner and reports no progress
 * after it failed.
 */
import { describe, expect, it } from "vitest";
import { makeVolume } from "../../src/image/volume.js";
import type { CtAcquisition } from "../../src/recon/acquisition.js";
import { parseMethods } from "../../src/recon/methods.js";
import type { SliceRunner } from "../../src/recon/pool.js";
import { reconstruct, type ProgressEvent } from "../../src/recon/reconstruct.js";
import type { SliceStore } from "../../src/recon/slice-store.js";

const acquisition: CtAcquisition = {
  modality: "ct",
  size: 8,
  views: 4,
  detectors: 12,
  noise: { kind: "none" },
};

describe("reconstruct after a failure that is not a cancel", () => {
  it("aborts the other running tasks and reports no progress after it rejected", async () => {
    const volume = makeVolume(3, 8, 8, new Float32Array(3 * 64), { modality: "CT" });
    const started: number[] = [];
    const aborted: number[] = [];
    const timers: NodeJS.Timeout[] = [];
    // Slice 0 finishes at once; the others report progress until they are aborted (never end).
    const runner: SliceRunner = {
      size: 2,
      run: (task, onIteration, signal) => {
        started.push(task.slice);
        if (task.slice === 0) return Promise.resolve({ image: new Float32Array(64), seconds: 0 });
        return new Promise((_, reject) => {
          const timer = setInterval(() => onIteration?.(1, 10), 2);
          timers.push(timer);
          signal?.addEventListener("abort", () => {
            clearInterval(timer);
            aborted.push(task.slice);
            reject(signal.reason);
          });
        });
      },
      close: async () => {},
    };
    const store: SliceStore = {
      get: () => undefined,
      put: async () => {
        // Let slice 1 run (and report) before the write fails.
        await new Promise((r) => setTimeout(r, 20));
        throw new Error("ENOSPC: no space left on device");
      },
    };
    const events: ProgressEvent[] = [];
    let rejected = false;
    const run = reconstruct({
      acquisition,
      methods: parseMethods("fbp", "ct"),
      volume,
      pool: runner,
      store,
      onProgress: (e) => {
        if (rejected) events.push(e);
      },
    });
    await expect(run).rejects.toThrow("ENOSPC");
    rejected = true;
    await new Promise((r) => setTimeout(r, 50));
    for (const t of timers) clearInterval(t);
    expect(started).toEqual([0, 1]);
    expect(aborted).toEqual([1]);
    expect(events).toEqual([]);
  });
});

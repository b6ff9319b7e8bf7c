/**
 * The slice pool's worker processes: one that dies (a fatal heap out of memory, an exit) fails
 * only its task, with the reason, and is replaced; a cancelled task stops at once, even one that
 * never yields; a retrospective study's tasks carry the image, and the worker simulates the
 * measurements.
 */
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { makeVolume } from "../../src/image/volume.js";
import type { CtAcquisition } from "../../src/recon/acquisition.js";
import { parseMethods } from "../../src/recon/methods.js";
import { SlicePool, type SliceRunner } from "../../src/recon/pool.js";
import { reconstruct } from "../../src/recon/reconstruct.js";
import { runSliceTask, type SliceTask } from "../../src/recon/slice-task.js";

const entry = fileURLToPath(new URL("../fixtures/workers/misbehaving-worker.mjs", import.meta.url));
const acquisition: CtAcquisition = {
  modality: "ct",
  size: 8,
  views: 4,
  detectors: 12,
  noise: { kind: "none" },
};
const task = (name: string, slice = 0): SliceTask => ({
  acquisition,
  method: { name, params: {} },
  input: { kind: "measured", y: new Float32Array(48) },
  rows: 8,
  cols: 8,
  slice,
});

const pools: SlicePool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

describe("slice pool", () => {
  it("a worker that runs out of memory or exits fails only its task, with the reason, and is replaced", async () => {
    const pool = new SlicePool(1, { entry, memoryMb: 64 });
    pools.push(pool);
    await expect(pool.run(task("oom"))).rejects.toMatchObject({
      code: "out_of_memory",
      message: expect.stringMatching(/worker running oom ran out of memory \(heap limit 64 MiB\)/),
    });
    await expect(pool.run(task("exit"))).rejects.toMatchObject({
      code: "worker_died",
      message: expect.stringMatching(/worker running exit stopped unexpectedly \(exit code 3\)/),
    });
    const out = await pool.run(task("fine", 7));
    expect(Array.from(out.image)).toEqual([7]);
  });

  it("a cancelled task stops at once, even one that never yields, and the pool goes on", async () => {
    const pool = new SlicePool(1, { entry });
    pools.push(pool);
    const controller = new AbortController();
    const hung = pool.run(task("hang"), undefined, controller.signal);
    setTimeout(() => controller.abort(new Error("cancelled")), 200);
    await expect(hung).rejects.toThrow("cancelled");
    expect(Array.from((await pool.run(task("fine", 2))).image)).toEqual([2]);
  });

  it("a worker that throws a plain Error gives an Error with a one-line message and the worker's stack", async () => {
    // The real slice worker: a task without measurements fails inside the method (a TypeError).
    const pool = new SlicePool(1);
    pools.push(pool);
    const broken = { ...task("fbp"), input: { kind: "measured", y: null } } as unknown as SliceTask;
    const err = await pool.run(broken).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^Cannot read properties of null[^\n]*$/);
    expect((err as Error).stack).toMatch(/slice-worker\.js/);
  });

  it("a retrospective study's tasks carry the image and the noise seed; the measurements are simulated where the task runs", async () => {
    const data = Float32Array.from({ length: 2 * 16 * 16 }, (_, i) => (i % 7) / 7);
    const volume = makeVolume(2, 16, 16, data, { modality: "CT" });
    const noisy: CtAcquisition = {
      modality: "ct",
      size: 16,
      views: 6,
      detectors: 23,
      noise: { kind: "gaussian", sigma: 0.01 },
    };
    const methods = parseMethods("fbp", "ct");
    const tasks: SliceTask[] = [];
    const recording: SliceRunner = {
      size: 2,
      run: async (t) => (tasks.push(t), runSliceTask(t)),
      close: async () => {},
    };
    const pooled = await reconstruct({ acquisition: noisy, methods, volume, seed: 5, pool: recording });
    expect(tasks.map((t) => [t.slice, t.input.kind, t.input.kind === "simulated" && t.input.seed])).toEqual([
      [0, "simulated", 5],
      [1, "simulated", 6],
    ]);
    for (const t of tasks) expect(t.input.kind === "simulated" && t.input.x.length).toBe(256);
    // The same bytes as simulating in the calling thread.
    const here = await reconstruct({ acquisition: noisy, methods, volume, seed: 5 });
    expect(Buffer.from(pooled.results[0].volume.data.buffer)).toEqual(
      Buffer.from(here.results[0].volume.data.buffer),
    );
  });
});

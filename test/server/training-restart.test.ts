/* eslint-disable @typescript-eslint/no-explicit-any -- the API's JSON bodies */
/**
 * A real server process killed (SIGKILL) mid-training and started again on the same data folder:
 * the training resumes from its last checkpoint (not from step 0) and ends with the weights of the
 * same training run without a stop, to 1e-6.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeVolume } from "../../src/io/index.js";
import { startServeProcess } from "../helpers.js";
import { tinyTraining } from "./training-helpers.js";

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scorerecon-train-restart-"));
const dataDir = join(root, "data");
const children: ChildProcess[] = [];

const start = () => startServeProcess(bin, dataDir, children);

const get = async (url: string) => (await fetch(url)).json() as Promise<any>;
const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function until(f: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 4800; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

function weights(name: string): Float32Array {
  const b = readFileSync(join(dataDir, "models", name, "weights.bin"));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
});

describe("training across a server kill", () => {
  it("resumes from the last checkpoint and ends with an uninterrupted run's weights", async () => {
    const N = 32;
    const data = new Float32Array(2 * N * N);
    for (let k = 0; k < 2; k++) data.set(generatePhantom("brain", N, 60 + k).data, k * N * N);
    const path = join(root, "brain.nii.gz");
    await writeVolume(path, makeVolume(2, N, N, data, { modality: "MR" }));
    let { child, url } = await start();
    const form = new FormData();
    form.append("modality", "MR");
    form.append("files", new Blob([readFileSync(path)]), "brain.nii.gz");
    const study = await (await fetch(`${url}api/studies`, { method: "POST", body: form })).json();
    const spec = (name: string) =>
      tinyTraining(name, study.id, { steps: 30, checkpointEvery: 5, grid: { count: 0 } });
    expect((await post(`${url}api/models`, spec("killed"))).status).toBe(202);
    // Killed past the checkpoint at step 10, before the end.
    await until(async () => (await get(`${url}api/models/killed`)).step >= 12, "step 12");
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const saved = JSON.parse(
      readFileSync(join(dataDir, "trainings", "killed", "checkpoint", "train-state.json"), "utf8"),
    );
    expect(saved.step).toBeGreaterThanOrEqual(10);
    expect(saved.step).toBeLessThan(30);

    ({ child, url } = await start());
    await until(
      async () =>
        (await get(`${url}api/models/killed`)).state !== "queued" &&
        (await get(`${url}api/models/killed`)).state !== "training",
      "killed ends",
    );
    const m = await get(`${url}api/models/killed`);
    expect(m).toMatchObject({ state: "ready", step: 30, restarts: 1 });
    // Its second run started at a checkpoint, at or after the one on disk at the kill.
    expect(m.runs).toHaveLength(2);
    expect(m.runs[0]).toBe(0);
    expect(m.runs[1]).toBeGreaterThanOrEqual(saved.step);
    expect(m.runs[1] % 5).toBe(0);

    expect((await post(`${url}api/models`, spec("whole"))).status).toBe(202);
    await until(
      async () => ["ready", "failed"].includes((await get(`${url}api/models/whole`)).state),
      "whole ends",
    );
    expect((await get(`${url}api/models/whole`)).state).toBe("ready");
    const a = weights("killed");
    const b = weights("whole");
    expect(a.length).toBe(b.length);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThanOrEqual(1e-6);
    child.kill("SIGTERM");
  }, 180_000);
});

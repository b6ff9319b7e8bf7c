/**
 * A real server process killed mid-job (SIGKILL: no chance to clean up) and started again on the
 * same data folder: the upload and the finished slices are intact, and the job completes. A job
 * under which the server died twice is failed at the next start, not run a third time.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeVolume } from "../../src/io/index.js";
import { startServeProcess } from "../helpers.js";

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scorerecon-restart-"));
const dataDir = join(root, "data");
const children: ChildProcess[] = [];

const start = () => startServeProcess(bin, dataDir, children);

/** Finished slice records of a job: file -> mtime. */
function finished(job: string): Map<string, number> {
  const dir = join(dataDir, "jobs", job, "slices");
  const out = new Map<string, number>();
  for (const m of readdirSync(dir))
    for (const f of readdirSync(join(dir, m)).filter((x) => x.endsWith(".json")))
      out.set(join(m, f), statSync(join(dir, m, f)).mtimeMs);
  return out;
}

/** The job's state as saved on disk (what a start after a kill sees). */
const savedState = (job: string) =>
  JSON.parse(readFileSync(join(dataDir, "jobs", job, "job.json"), "utf8")).state as string;

async function killWhileRunning(child: ChildProcess, job: string): Promise<void> {
  for (let i = 0; savedState(job) !== "running"; i++) {
    expect(i).toBeLessThan(1200);
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
}

afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
});

describe("server restart", () => {
  it("keeps uploads and finished slices across a kill mid-job, and completes the job", async () => {
    const N = 96;
    const data = new Float32Array(4 * N * N);
    for (let k = 0; k < 4; k++) data.set(generatePhantom("brain", N, 900 + k).data, k * N * N);
    const path = join(root, "brain.nii.gz");
    await writeVolume(path, makeVolume(4, N, N, data, { modality: "MR" }));

    let { child, url } = await start();
    const form = new FormData();
    form.append("modality", "MR");
    form.append("files", new Blob([readFileSync(path)]), "brain.nii.gz");
    const study = await (await fetch(`${url}api/studies`, { method: "POST", body: form })).json();
    expect(study.series[0].slices).toBe(4);
    const sid = study.series[0].id;
    const before = await (
      await fetch(`${url}api/studies/${study.id}/series/${sid}/slices/2?format=float32`)
    ).json();
    const job = await (
      await fetch(`${url}api/jobs`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        // About 0.8 s a slice: the kill, within 50 ms of the first slice, lands before the last.
        body: JSON.stringify({ study: study.id, methods: [{ name: "tv", params: { iterations: 500 } }] }),
      })
    ).json();
    // Killed once one slice is finished (and recorded), before the job ends.
    for (let i = 0; ; i++) {
      const j = await (await fetch(`${url}api/jobs/${job.id}`)).json();
      if (j.perMethod.tv.done >= 1) break;
      expect(j.state).not.toBe("done");
      expect(i).toBeLessThan(1200);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const kept = finished(job.id);
    expect(kept.size).toBeGreaterThanOrEqual(1);
    expect(kept.size).toBeLessThan(4);

    ({ child, url } = await start());
    const again = await (
      await fetch(`${url}api/studies/${study.id}/series/${sid}/slices/2?format=float32`)
    ).json();
    expect(again.pixels).toBe(before.pixels);
    let j;
    for (let i = 0; ; i++) {
      j = await (await fetch(`${url}api/jobs/${job.id}`)).json();
      if (j.state === "done" || j.state === "failed") break;
      expect(i).toBeLessThan(2400);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(j.state).toBe("done");
    expect(j.restarts).toBe(1);
    expect(j.perMethod.tv.done).toBe(4);
    expect(j.metrics.perSlice.tv.map((m: { slice: number }) => m.slice)).toEqual([0, 1, 2, 3]);
    // The slices finished before the kill were not recomputed.
    const after = finished(job.id);
    for (const [f, mtime] of kept) expect(after.get(f)).toBe(mtime);
    const res = await fetch(`${url}api/jobs/${job.id}/results/tv/slices/3`);
    expect(res.status).toBe(200);
    child.kill("SIGTERM");
  }, 180_000);

  it("fails, at the next start, a job under which the server died twice", async () => {
    const N = 64;
    const path = join(root, "small.nii.gz");
    await writeVolume(path, makeVolume(1, N, N, generatePhantom("brain", N, 7).data, { modality: "MR" }));
    let { child, url } = await start();
    const form = new FormData();
    form.append("modality", "MR");
    form.append("files", new Blob([readFileSync(path)]), "small.nii.gz");
    const study = await (await fetch(`${url}api/studies`, { method: "POST", body: form })).json();
    const job = await (
      await fetch(`${url}api/jobs`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ study: study.id, methods: [{ name: "tv", params: { iterations: 5000 } }] }),
      })
    ).json();
    await killWhileRunning(child, job.id);
    // The first death: re-queued and run again.
    ({ child, url } = await start());
    await killWhileRunning(child, job.id);
    ({ child, url } = await start());
    for (let i = 0; (await fetch(`${url}readyz`)).status !== 200; i++) {
      expect(i).toBeLessThan(1200);
      await new Promise((r) => setTimeout(r, 25));
    }
    const j = await (await fetch(`${url}api/jobs/${job.id}`)).json();
    expect(j).toMatchObject({ state: "failed", restarts: 2, error: { code: "interrupted" } });
    expect(j.error.message).toMatch(/the server stopped 2 times while this job was running/);
    expect(savedState(job.id)).toBe("failed");
    child.kill("SIGTERM");
  }, 180_000);
});

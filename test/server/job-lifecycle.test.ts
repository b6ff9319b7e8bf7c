/* eslint-disable @typescript-eslint/no-explicit-any -- the API's JSON bodies */
/**
 * A job's life around the edges of the server's: a graceful stop mid-job leaves it queued (the
 * next start resumes it as it was, not as a job the server died under); the finished slices of a
 * job that names a user model are served after it is cancelled; result slices of a job not done
 * are revalidated, those of a done job and of a study kept; a study deleted as its job finishes
 * leaves the job marked `study_deleted`.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import request from "supertest";
import { afterAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { packageRoot } from "../../src/package-root.js";
import { createServer, type ScoreReconServer } from "../../server/app.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-lifecycle-"));
const servers: ScoreReconServer[] = [];

function start(dataDir: string): ScoreReconServer {
  const s = createServer({ dataDir, workers: 1, jobRateLimit: 1000 });
  servers.push(s);
  return s;
}

const brain = (n: number, slices: number) => {
  const data = new Float32Array(slices * n * n);
  for (let k = 0; k < slices; k++) data.set(generatePhantom("brain", n, 800 + k).data, k * n * n);
  return makeVolume(slices, n, n, data, { modality: "MR" });
};

async function waitFor(s: ScoreReconServer, id: string, ok: (j: any) => boolean): Promise<any> {
  for (let i = 0; i < 2400; i++) {
    const j = s.jobs.get(id);
    if (j && ok(j)) return j;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id}: condition never met (${JSON.stringify(s.jobs.get(id))})`);
}

async function startJob(s: ScoreReconServer, spec: object): Promise<string> {
  const r = await request(s.app).post("/api/jobs").send(spec);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

afterAll(async () => {
  for (const s of servers) await s.close().catch(() => {});
});

describe("job lifecycle", () => {
  it("a graceful stop mid-job leaves it queued; the next start resumes it with restarts 0 and completes it", async () => {
    const dataDir = join(root, "stop");
    let s = start(dataDir);
    await s.ready;
    const study = (await s.storage.addStudy("demo", 0, [brain(32, 2)], ["mr"])).id;
    const id = await startJob(s, {
      study,
      methods: [{ name: "zero-filled" }, { name: "tv", params: { iterations: 3000 } }],
    });
    await waitFor(s, id, (j) => j.progress["zero-filled"].done === 2 && j.progress.tv.current);
    // A finished slice of a running job is revalidated by its ETag, not kept.
    const running = await request(s.app).get(`/api/jobs/${id}/results/zero-filled/slices/0`);
    expect(running.status).toBe(200);
    expect(running.headers["cache-control"]).toBe("private, no-cache");
    const again = await request(s.app)
      .get(`/api/jobs/${id}/results/zero-filled/slices/0`)
      .set("If-None-Match", running.headers.etag);
    expect(again.status).toBe(304);

    await s.close();
    const saved = JSON.parse(readFileSync(join(dataDir, "jobs", id, "job.json"), "utf8"));
    expect(saved).toMatchObject({ state: "queued", restarts: 0 });

    s = start(dataDir);
    await s.ready;
    expect(s.jobs.get(id)).toMatchObject({ restarts: 0 });
    const job = await waitFor(s, id, (j) => s.jobs.isFinal(j));
    expect(job, JSON.stringify(job.error)).toMatchObject({ state: "done", restarts: 0 });
    expect(job.progress.tv.done).toBe(2);
    // Done: its slices no longer change, nor do a study's.
    const done = await request(s.app).get(`/api/jobs/${id}/results/zero-filled/slices/0`);
    expect(done.headers["cache-control"]).toBe("private, max-age=31536000, immutable");
    const error = await request(s.app).get(`/api/jobs/${id}/results/zero-filled/error/slices/0`);
    expect(error.headers["cache-control"]).toBe("private, max-age=31536000, immutable");
    const series = s.storage.study(study)!.series[0].id;
    const source = await request(s.app).get(`/api/studies/${study}/series/${series}/slices/0`);
    expect(source.headers["cache-control"]).toBe("private, max-age=31536000, immutable");
    await s.close();
  }, 180_000);

  it("a cancelled job that names a user model serves the slices it finished", async () => {
    const dataDir = join(root, "model");
    const mine = join(dataDir, "models", "mine");
    mkdirSync(mine, { recursive: true });
    for (const f of ["model.json", "prior.json", "weights.bin"])
      copyFileSync(join(packageRoot(), "models", "mri", f), join(mine, f));
    const s = start(dataDir);
    await s.ready;
    const study = (await s.storage.addStudy("demo", 0, [brain(32, 2)], ["mr"])).id;
    const id = await startJob(s, {
      study,
      methods: [
        { name: "score", params: { steps: 2, samples: 2 } },
        { name: "tv", params: { iterations: 100_000 } },
      ],
      model: "mine",
    });
    await waitFor(s, id, (j) => j.progress.score.done === 2 && j.progress.tv.current);
    expect((await request(s.app).delete(`/api/jobs/${id}`)).status).toBe(202);
    await waitFor(s, id, (j) => j.state === "cancelled");
    for (const method of ["score", "score-std"])
      for (const n of [0, 1]) {
        const r = await request(s.app).get(`/api/jobs/${id}/results/${method}/slices/${n}?format=float32`);
        expect(r.status, `${method} ${n}: ${JSON.stringify(r.body)}`).toBe(200);
        expect(r.body).toMatchObject({ rows: 32, cols: 32, dtype: "float32" });
        expect(r.headers["cache-control"]).toBe("private, no-cache");
      }
    // Its outputs removed with its study: nothing of it is kept in memory either.
    expect((s.jobs as any).results.huOf.has(id)).toBe(true);
    expect((await request(s.app).delete(`/api/studies/${study}`)).status).toBe(204);
    expect((s.jobs as any).results.huOf.has(id)).toBe(false);
    await s.close();
  }, 180_000);

  it("a study deleted just as its job finishes leaves the job marked study_deleted", async () => {
    const dataDir = join(root, "delete");
    const s = start(dataDir);
    await s.ready;
    const study = (await s.storage.addStudy("demo", 0, [brain(32, 1)], ["mr"])).id;
    // The study is deleted while the job saves its results: its run is past any cancellation.
    const saveResult = s.storage.saveResult.bind(s.storage);
    let deleting: Promise<void> | undefined;
    s.storage.saveResult = async (...args: Parameters<typeof saveResult>) => {
      deleting ??= s.jobs.removeStudyJobs(study).then(() => void s.storage.deleteStudy(study));
      return saveResult(...args);
    };
    const id = await startJob(s, { study, methods: [{ name: "zero-filled" }] });
    await waitFor(s, id, () => deleting !== undefined);
    await deleting;
    const job = s.jobs.get(id)!;
    expect(job).toMatchObject({ state: "done", error: { code: "study_deleted" } });
    const saved = JSON.parse(readFileSync(join(dataDir, "jobs", id, "job.json"), "utf8"));
    expect(saved.error).toMatchObject({ code: "study_deleted" });
    await s.close();
  }, 120_000);
});

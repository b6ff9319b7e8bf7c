/* eslint-disable @typescript-eslint/no-explicit-any -- the API's JSON bodies */
/**
 * Jobs at run time on an in-process server: a worker that dies fails its job and nothing else;
 * deleting a study stops its jobs and removes their results; a cancelled job still serves what it
 * finished; exports lie where the job's own slices lie; list routes paginate.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dicomParser from "dicom-parser";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeDicomSeries } from "../../src/io/dicom-write.js";
import { readVolume } from "../../src/io/index.js";
import { createServer, type ScoreReconServer } from "../../server/app.js";
import { binaryBody, unzip } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-jobs-"));
const N = 64;

/** A 3-slice MR DICOM series at distinct positions (z = 5, 7.5, 10 mm), written to `name`. */
async function series(name: string): Promise<string[]> {
  const data = new Float32Array(3 * N * N);
  for (let k = 0; k < 3; k++) data.set(generatePhantom("brain", N, 700 + k).data, k * N * N);
  const v = makeVolume(3, N, N, data, {
    modality: "MR",
    spacing: [1, 1, 2.5],
    dicom: {
      patientStudy: {},
      modality: "MR",
      orientation: [1, 0, 0, 0, 1, 0],
      slices: [0, 1, 2].map((k) => ({
        sopClassUid: "",
        sopInstanceUid: "",
        position: [-10, 20, 5 + 2.5 * k],
      })),
    },
  });
  return writeDicomSeries(join(root, name), v, { description: "source", derivation: "test" });
}

async function upload(s: ScoreReconServer, files: string[]): Promise<any> {
  let req = request(s.app).post("/api/studies");
  for (const f of files) req = req.attach("files", f);
  const res = await req;
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function startJob(s: ScoreReconServer, spec: object): Promise<string> {
  const res = await request(s.app).post("/api/jobs").send(spec);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function waitFor(s: ScoreReconServer, id: string, ok: (j: any) => boolean): Promise<any> {
  for (let i = 0; i < 2400; i++) {
    const j = (await request(s.app).get(`/api/jobs/${id}`)).body;
    if (ok(j)) return j;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} never got there`);
}

/** ImagePositionPatient and the SourceImageSequence's instance of each file, by position. */
function geometry(files: string[]): { position: number[]; source: string }[] {
  return files
    .map((f) => {
      const ds = dicomParser.parseDicom(new Uint8Array(readFileSync(f)));
      const ref = ds.elements.x00082112?.items?.[0]?.dataSet;
      return {
        position: ds.string("x00200032")!.split("\\").map(Number),
        source: ref?.string("x00081155") ?? "",
      };
    })
    .sort((a, b) => a.position[2] - b.position[2]);
}

let s: ScoreReconServer;
let files: string[];
let study: any;

beforeAll(async () => {
  s = createServer({ dataDir: join(root, "data"), workers: 2, jobRateLimit: 1000 });
  await s.ready;
  files = await series("source");
  study = await upload(s, files);
});
afterAll(async () => {
  await s?.close();
});

describe("jobs at run time", () => {
  it("exports of a job over slices [1, 3) lie at source slices 1 and 2 (DICOM and NIfTI)", async () => {
    const id = await startJob(s, { study: study.id, slices: [1, 3], methods: [{ name: "zero-filled" }] });
    await waitFor(s, id, (j) => j.state === "done");
    const zip = await request(s.app)
      .get(`/api/jobs/${id}/results/zero-filled/download?format=dicom`)
      .buffer(true)
      .parse(binaryBody);
    expect(zip.status).toBe(200);
    const dir = join(root, "export-dicom");
    await unzip(zip.body, dir);
    const source = geometry(files);
    const derived = geometry(readdirSync(dir).map((f) => join(dir, f)));
    const sopOf = (f: string) => dicomParser.parseDicom(new Uint8Array(readFileSync(f))).string("x00080018");
    const sourceUids = new Map(files.map((f) => [geometry([f])[0].position[2], sopOf(f)]));
    expect(derived.map((d) => d.position)).toEqual([source[1].position, source[2].position]);
    expect(derived.map((d) => d.source)).toEqual(
      [source[1].position[2], source[2].position[2]].map((z) => sourceUids.get(z)),
    );

    const nii = await request(s.app)
      .get(`/api/jobs/${id}/results/zero-filled/download?format=nifti`)
      .buffer(true);
    expect(nii.status).toBe(200);
    const path = join(root, "export.nii.gz");
    await import("node:fs").then((fs) => fs.writeFileSync(path, nii.body));
    const v = await readVolume(path);
    const first = await readVolume(
      files.find((f) => geometry([f])[0].position[2] === source[1].position[2])!,
    );
    const origin = (a: readonly number[]) => [a[3], a[7], a[11]].map((x) => +x.toFixed(4));
    expect(origin(v.affine!)).toEqual(origin(first.affine!));
  });

  it("a cancelled job keeps serving the slices it finished", async () => {
    const id = await startJob(s, {
      study: study.id,
      methods: [{ name: "zero-filled" }, { name: "tv", params: { iterations: 5000 } }],
    });
    await waitFor(s, id, (j) => j.perMethod["zero-filled"].done === 3 && j.perMethod.tv.current);
    expect((await request(s.app).delete(`/api/jobs/${id}`)).status).toBe(202);
    const job = await waitFor(s, id, (j) => j.state === "cancelled");
    expect(job.perMethod.tv.done).toBe(0);
    const metrics = (await request(s.app).get(`/api/jobs/${id}/metrics`)).body;
    expect(metrics.perSlice["zero-filled"].map((m: any) => m.slice)).toEqual([0, 1, 2]);
    for (const n of [0, 1, 2]) {
      const r = await request(s.app).get(`/api/jobs/${id}/results/zero-filled/slices/${n}?format=float32`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ rows: N, cols: N, dtype: "float32" });
    }
    const tv = await request(s.app).get(`/api/jobs/${id}/results/tv/slices/0`);
    expect(tv.status).toBe(404);
    expect(tv.body.error.code).toBe("not_ready");
  });

  it("deleting a study cancels its running job and removes its jobs' results; nothing answers 500", async () => {
    const other = await upload(s, files);
    const done = await startJob(s, { study: other.id, methods: [{ name: "zero-filled" }] });
    await waitFor(s, done, (j) => j.state === "done");
    const running = await startJob(s, {
      study: other.id,
      methods: [{ name: "tv", params: { iterations: 5000 } }],
    });
    await waitFor(s, running, (j) => j.state === "running");
    expect((await request(s.app).delete(`/api/studies/${other.id}`)).status).toBe(204);
    const job = (await request(s.app).get(`/api/jobs/${running}`)).body;
    expect(job).toMatchObject({ state: "cancelled", error: { code: "study_deleted" } });
    for (const id of [done, running]) {
      for (const sub of ["results", "slices"])
        expect(existsSync(join(root, "data", "jobs", id, sub))).toBe(false);
      for (const path of [
        `/api/jobs/${id}`,
        `/api/jobs/${id}/metrics`,
        `/api/jobs/${id}/results/tv/slices/0`,
        `/api/jobs/${id}/results/zero-filled/slices/0`,
        `/api/jobs/${id}/results/zero-filled/download`,
      ]) {
        const r = await request(s.app).get(path);
        expect(r.status, path).toBeLessThan(500);
      }
      expect((await request(s.app).get(`/api/jobs/${id}/results/zero-filled/download`)).status).toBe(404);
    }
    // It stays stopped: nothing is written for it afterwards.
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(root, "data", "jobs", running, "slices"))).toBe(false);
    expect((await request(s.app).get(`/api/jobs/${running}`)).body.state).toBe("cancelled");
  });

  it("lists jobs and studies a page at a time, from the newest, in the order they were created", async () => {
    const all = (await request(s.app).get("/api/jobs?limit=1000")).body;
    expect(all.total).toBeGreaterThanOrEqual(4);
    expect(all.jobs).toHaveLength(all.total);
    const created = all.jobs.map((j: any) => j.created);
    expect(created).toEqual([...created].sort());
    // The 2 newest after the newest one.
    const second = (await request(s.app).get("/api/jobs?limit=2&offset=1")).body;
    expect(second).toMatchObject({ total: all.total, limit: 2, offset: 1 });
    expect(second.jobs.map((j: any) => j.id)).toEqual(all.jobs.slice(-3, -1).map((j: any) => j.id));
    expect((await request(s.app).get(`/api/jobs?offset=${all.total}`)).body.jobs).toEqual([]);
    const newer = await upload(s, files);
    const studies = (await request(s.app).get("/api/studies?limit=1")).body;
    expect(studies).toMatchObject({ total: 2, limit: 1, offset: 0 });
    expect(studies.studies.map((x: any) => x.id)).toEqual([newer.id]);
    const older = (await request(s.app).get("/api/studies?limit=1&offset=1")).body;
    expect(older.studies.map((x: any) => x.id)).toEqual([study.id]);
    expect((await request(s.app).get("/api/jobs")).body.limit).toBe(100);
    for (const [q, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=2.5", "limit"],
      ["offset=-1", "offset"],
      ["offset=x", "offset"],
    ]) {
      const r = await request(s.app).get(`/api/jobs?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.field).toBe(field);
    }
  });
});

describe("a worker that dies", () => {
  it("fails its job with the reason; the server goes on answering", async () => {
    // 8 MiB of heap: the worker runs out of memory while it loads.
    const t = createServer({ dataDir: join(root, "data-oom"), workers: 1, workerMemoryMb: 8 });
    try {
      await t.ready;
      const st = await upload(t, files);
      const id = await startJob(t, { study: st.id, methods: [{ name: "zero-filled" }] });
      const job = await waitFor(t, id, (j) => j.state !== "queued" && j.state !== "running");
      expect(job.state).toBe("failed");
      expect(job.error.code).toBe("out_of_memory");
      expect(job.error.message).toMatch(/ran out of memory \(heap limit 8 MiB\)/);
      expect((await request(t.app).get("/healthz")).status).toBe(200);
      expect((await request(t.app).get(`/api/studies/${st.id}`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

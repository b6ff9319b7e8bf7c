/* eslint-disable @typescript-eslint/no-explicit-any -- the API's JSON bodies */
/** The HTTP API, route by route, on an in-process server (supertest) and a real port for SSE. */
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume, type Volume } from "../../src/image/volume.js";
import { writeDicomSeries } from "../../src/io/dicom-write.js";
import { binaryBody, unzip } from "../helpers.js";
import { readVolume, writeVolume } from "../../src/io/index.js";
import { createServer, listen, type ScoreReconServer } from "../../server/app.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-api-"));
const N = 96;

function phantomVolume(slices: number, kind: "brain" | "ct-body" = "brain"): Volume {
  const data = new Float32Array(slices * N * N);
  for (let k = 0; k < slices; k++) data.set(generatePhantom(kind, N, 500 + k).data, k * N * N);
  return makeVolume(slices, N, N, data, {
    modality: kind === "brain" ? "MR" : "CT",
    units: kind === "brain" ? "arbitrary" : "HU",
    spacing: [1, 1, 2],
    dicom: {
      patientStudy: { PatientName: "DOE^JANE", PatientID: "PID-4711" },
      modality: kind === "brain" ? "MR" : "CT",
      slices: Array.from({ length: slices }, () => ({ sopClassUid: "", sopInstanceUid: "" })),
    },
  });
}

async function dicomFiles(v: Volume, name: string): Promise<string[]> {
  const dir = join(root, name);
  return writeDicomSeries(dir, v, { description: "test series", derivation: "test" });
}

/** Decodes the API's slice pixels to real values. */
function decode(body: { dtype: string; slope: number; intercept: number; pixels: string }): Float32Array {
  const bytes = Buffer.from(body.pixels, "base64");
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (body.dtype === "float32") return new Float32Array(ab);
  return Float32Array.from(new Int16Array(ab), (v) => v * body.slope + body.intercept);
}

/** Reads an SSE stream until it ends: [event, data] in order. */
async function readEvents(url: string, headers: Record<string, string> = {}): Promise<[string, any][]> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((b) => b.includes("event:"))
    .map((b) => {
      const type = /event: (.*)/.exec(b)![1];
      return [type, JSON.parse(/data: (.*)/.exec(b)![1])];
    });
}

async function waitFor(s: ScoreReconServer, id: string, states: string[]): Promise<any> {
  for (let i = 0; i < 1200; i++) {
    const j = s.jobs.get(id)!;
    if (states.includes(j.state)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} never reached ${states.join("/")}`);
}

let s: ScoreReconServer;
let server: Server;
let base: string;
const logs: string[] = [];
let dicomStudy: any;

beforeAll(async () => {
  s = createServer({
    dataDir: join(root, "data"),
    workers: 2,
    limits: { fileSize: 4 * 1024 * 1024, files: 20 },
    jobRateLimit: 1000,
    log: (l) => logs.push(l),
  });
  await s.ready;
  server = await listen(s, 0, "127.0.0.1");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await s?.close();
});

describe("studies", () => {
  it("uploads a multi-file DICOM series and serves its slices (int16 with slope/intercept, float32)", async () => {
    const v = phantomVolume(3);
    const files = await dicomFiles(v, "dicom-mr");
    let req = request(s.app).post("/api/studies");
    for (const f of files) req = req.attach("files", f);
    const res = await req;
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    dicomStudy = res.body;
    expect(res.body.source).toBe("dicom");
    expect(res.body.files).toBe(3);
    expect(res.body.series).toHaveLength(1);
    expect(res.body.series[0]).toMatchObject({ modality: "MR", rows: N, cols: N, slices: 3 });
    expect(JSON.stringify(res.body)).not.toMatch(/DOE|PID-4711/);

    const sid = res.body.series[0].id;
    const stored = await readVolume(join(root, "dicom-mr"));
    const slice = await request(s.app).get(`/api/studies/${res.body.id}/series/${sid}/slices/1`);
    expect(slice.status).toBe(200);
    expect(slice.headers["cache-control"]).toMatch(/max-age/);
    expect(slice.body).toMatchObject({ rows: N, cols: N, dtype: "int16" });
    const ints = decode(slice.body);
    const truth = stored.data.subarray(N * N, 2 * N * N);
    for (let i = 0; i < N * N; i++)
      expect(Math.abs(ints[i] - truth[i])).toBeLessThanOrEqual(slice.body.slope / 2 + 1e-6);
    const floats = await request(s.app).get(
      `/api/studies/${res.body.id}/series/${sid}/slices/1?format=float32`,
    );
    expect(Array.from(decode(floats.body))).toEqual(Array.from(truth));

    expect((await request(s.app).get("/api/studies")).body.studies.map((x: any) => x.id)).toContain(
      res.body.id,
    );
    expect((await request(s.app).get(`/api/studies/${res.body.id}`)).body.id).toBe(res.body.id);
    expect((await request(s.app).get(`/api/studies/${res.body.id}/series/${sid}/slices/3`)).status).toBe(404);
    expect((await request(s.app).get(`/api/studies/${res.body.id}/series/${sid}/slices/-1`)).status).toBe(
      404,
    );
    // Request logs name routes, never patient data.
    expect(logs.join("\n")).not.toMatch(/DOE|PID-4711/);
    expect(logs.some((l) => l.startsWith("POST /api/studies 201"))).toBe(true);
  });

  it("uploads a NIfTI volume (with its modality) and a .zip of DICOM files", async () => {
    const path = join(root, "ct.nii.gz");
    await writeVolume(path, phantomVolume(2, "ct-body"));
    const nifti = await request(s.app).post("/api/studies").field("modality", "CT").attach("files", path);
    expect(nifti.status, JSON.stringify(nifti.body)).toBe(201);
    expect(nifti.body.source).toBe("nifti");
    expect(nifti.body.series[0]).toMatchObject({ modality: "CT", units: "HU", slices: 2 });

    const files = await dicomFiles(phantomVolume(2), "dicom-zip");
    const zip = new yazl.ZipFile();
    files.forEach((f, i) => zip.addFile(f, `nested/IM${i}`));
    zip.end();
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream) chunks.push(c as Buffer);
    writeFileSync(join(root, "series.zip"), Buffer.concat(chunks));
    const zipped = await request(s.app).post("/api/studies").attach("files", join(root, "series.zip"));
    expect(zipped.status, JSON.stringify(zipped.body)).toBe(201);
    expect(zipped.body.series[0].slices).toBe(2);
  });

  it("refuses oversized uploads and too many files with 413, and non-images with 400", async () => {
    writeFileSync(join(root, "big.dcm"), Buffer.alloc(5 * 1024 * 1024));
    const big = await request(s.app).post("/api/studies").attach("files", join(root, "big.dcm"));
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ code: "too_large", field: "files" });
    let many = request(s.app).post("/api/studies");
    writeFileSync(join(root, "tiny.dcm"), "x");
    for (let i = 0; i < 21; i++) many = many.attach("files", join(root, "tiny.dcm"));
    expect((await many).status).toBe(413);
    writeFileSync(join(root, "notes.txt"), "not an image");
    const text = await request(s.app).post("/api/studies").attach("files", join(root, "notes.txt"));
    expect(text.status).toBe(400);
    expect(text.body.error.message).toMatch(/^notes\.txt is not a readable DICOM file/);
    expect(text.body.error.message).not.toMatch(/\/uploads\//);
    expect((await request(s.app).post("/api/studies")).status).toBe(400);
    // Nothing half-stored: the upload folder is empty again.
    expect(readdirSync(join(root, "data", "uploads"))).toEqual([]);
  });

  it("unknown and malformed ids are 404 and never touch the filesystem (traversal)", async () => {
    for (const path of [
      "/api/studies/00000000-0000-4000-8000-000000000000",
      "/api/studies/..%2F..%2F..%2Fetc%2Fpasswd",
      "/api/studies/%2E%2E/series/x/slices/0",
      "/api/jobs/..%2Fstudies",
      "/api/jobs/00000000-0000-4000-8000-000000000000/results/..%2F..%2Fjob/slices/0",
      "/api/nope",
    ]) {
      const r = await request(s.app).get(path);
      expect(r.status, path).toBe(404);
      expect(r.body.error.code).toBe("not_found");
    }
    const job = await request(s.app)
      .post("/api/jobs")
      .send({ study: "../../etc", methods: [{ name: "tv" }] });
    expect(job.status).toBe(404);
    expect(job.body.error.field).toBe("study");
  });
});

describe("jobs", () => {
  it("runs a job from creation to results: SSE events in order, results, error maps, metrics, downloads", async () => {
    const spec = {
      study: dicomStudy.id,
      slices: [0, 2],
      mri: { acceleration: 4, centerFraction: 0.08, seed: 1 },
      methods: [
        { name: "zero-filled" },
        { name: "tv", params: { iterations: 30 } },
        { name: "score", params: { steps: 4 } },
      ],
      model: "mri",
    };
    const created = await request(s.app).post("/api/jobs").send(spec);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    const events = await readEvents(`${base}/api/jobs/${id}/events`);
    expect(events[0][0]).toBe("snapshot");
    expect(events.at(-1)).toEqual(["state", expect.objectContaining({ state: "done" })]);
    const slices = events.filter(([t]) => t === "slice").map(([, e]) => e);
    expect(slices).toHaveLength(6);
    for (const m of ["zero-filled", "tv", "score"])
      expect(slices.filter((e) => e.method === m).map((e) => e.done)).toEqual([1, 2]);
    expect(events.some(([t, e]) => t === "progress" && e.method === "tv" && e.total === 30)).toBe(true);

    const job = (await request(s.app).get(`/api/jobs/${id}`)).body;
    expect(job).toMatchObject({ state: "done", progress: 1, modality: "mri" });
    const metrics = (await request(s.app).get(`/api/jobs/${id}/metrics`)).body;
    expect(metrics.perSlice.tv.map((m: any) => m.slice)).toEqual([0, 1]);
    expect(metrics.mean.tv.psnr).toBeGreaterThan(metrics.mean["zero-filled"].psnr);
    expect(slices.find((e) => e.method === "tv" && e.slice === 1).metrics.psnr).toBeCloseTo(
      metrics.perSlice.tv[1].psnr,
      10,
    );

    const study = (
      await request(s.app).get(
        `/api/studies/${dicomStudy.id}/series/${dicomStudy.series[0].id}/slices/1?format=float32`,
      )
    ).body;
    const tv = await request(s.app).get(`/api/jobs/${id}/results/tv/slices/1?format=float32`);
    expect(tv.status).toBe(200);
    const err = await request(s.app).get(`/api/jobs/${id}/results/tv/error/slices/1?format=float32`);
    const [gt, rec, diff] = [decode(study), decode(tv.body), decode(err.body)];
    for (let i = 0; i < N * N; i += 97) expect(diff[i]).toBeCloseTo(rec[i] - gt[i], 5);
    expect((await request(s.app).get(`/api/jobs/${id}/results/tv/slices/2`)).status).toBe(404);
    expect((await request(s.app).get(`/api/jobs/${id}/results/sirt/slices/0`)).status).toBe(404);

    const nifti = await request(s.app).get(`/api/jobs/${id}/results/tv/download?format=nifti`).buffer(true);
    expect(nifti.status).toBe(200);
    writeFileSync(join(root, "tv.nii.gz"), nifti.body);
    const v = await readVolume(join(root, "tv.nii.gz"));
    expect([v.slices, v.rows, v.cols]).toEqual([2, N, N]);
    const zip = await request(s.app)
      .get(`/api/jobs/${id}/results/tv/download?format=dicom`)
      .buffer(true)
      .parse(binaryBody);
    expect(zip.status).toBe(200);
    expect(zip.headers["content-type"]).toMatch(/zip/);
    await unzip(zip.body, join(root, "tv-dicom"));
    const back = await readVolume(join(root, "tv-dicom"));
    expect([back.slices, back.rows, back.cols]).toEqual([2, N, N]);
    expect(Math.abs(back.data[N * N + 2000] - rec[2000])).toBeLessThan(
      1e-2 * (Math.max(...rec) - Math.min(...rec)),
    );
    // Method names reach the results folder only when they are the job's own.
    const traversal = await request(s.app).get(
      `/api/jobs/${id}/results/..%2F..%2F..%2Fstudies%2F${dicomStudy.id}%2Fseries%2F${dicomStudy.series[0].id}/download`,
    );
    expect(traversal.status).toBe(404);
    // A finished job cannot be cancelled.
    expect((await request(s.app).delete(`/api/jobs/${id}`)).status).toBe(409);
    expect((await request(s.app).get("/api/jobs")).body.jobs.some((j: any) => j.id === id)).toBe(true);
  }, 120_000);

  it("cancels a running job between iterations", async () => {
    const created = await request(s.app)
      .post("/api/jobs")
      .send({ study: dicomStudy.id, methods: [{ name: "tv", params: { iterations: 100000 } }] });
    const id = created.body.id;
    await waitFor(s, id, ["running"]);
    const del = await request(s.app).delete(`/api/jobs/${id}`);
    expect(del.status).toBe(202);
    const job = await waitFor(s, id, ["cancelled"]);
    expect(job.progress.tv.done).toBe(0);
  }, 60_000);

  it.each([
    [{}, "methods"],
    [{ methods: [] }, "methods"],
    [{ methods: [{ name: "nope" }] }, "methods[0]"],
    [{ methods: [{ name: "tv", params: { lambda: -1 } }] }, "methods[0].lambda"],
    [{ methods: [{ name: "tv", params: { bogus: 1 } }] }, "methods[0]"],
    [{ methods: [{ name: "fbp" }] }, "methods[0]"],
    [{ methods: [{ name: "tv" }, { name: "tv" }] }, "methods[1]"],
    [{ methods: [{ name: "score", params: { model: "/etc" } }] }, "methods[0].model"],
    [{ methods: [{ name: "tv" }], mri: { acceleration: 0.5 } }, "mri.acceleration"],
    [{ methods: [{ name: "tv" }], mri: { mask: "spiral" } }, "mri.mask"],
    [{ methods: [{ name: "tv" }], ct: { views: 10 } }, "ct"],
    [{ methods: [{ name: "tv" }], slices: [2, 9] }, "slices"],
    [{ methods: [{ name: "tv" }], extra: true }, "body"],
    [{ methods: [{ name: "tv" }], model: "../../models/x" }, "model"],
  ])("invalid job spec %# is refused naming the field", async (partial, field) => {
    const r = await request(s.app)
      .post("/api/jobs")
      .send({ study: dicomStudy.id, ...partial });
    expect([400, 404]).toContain(r.status);
    expect(r.body.error.field).toBe(field);
    expect(r.body.error.message).toMatch(
      new RegExp(`^${field.replace(/[[\].]/g, "\\$&")}|${field === "body" ? "" : "method"}`),
    );
  });

  it("lists the shipped models with their prior.json", async () => {
    const r = await request(s.app).get("/api/models");
    const names = r.body.models.map((m: any) => m.name);
    expect(names).toEqual(expect.arrayContaining(["mri", "ct"]));
    expect(r.body.models.find((m: any) => m.name === "mri").prior.modality).toBe("mri");
    expect((await request(s.app).get("/api/openapi.json")).body.openapi).toBe("3.1.0");
    expect((await request(s.app).get("/healthz")).body.ok).toBe(true);
    expect((await request(s.app).get("/readyz")).status).toBe(200);
  });

  it("draws the sampling mask a job would use (the job form's picture)", async () => {
    const r = await request(s.app).get(
      "/api/masks?rows=16&cols=64&acceleration=4&centerFraction=0.08&seed=3",
    );
    expect(r.status).toBe(200);
    const mask = Buffer.from(r.body.mask, "base64");
    expect(mask.length).toBe(16 * 64);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(16 * 16);
    expect(r.body.acceleration).toBe(4);
    const bad = await request(s.app).get("/api/masks?rows=16&cols=64&kind=spiral");
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("kind");
  });

  it("deletes a study", async () => {
    const files = await dicomFiles(phantomVolume(1), "dicom-del");
    const up = await request(s.app).post("/api/studies").attach("files", files[0]);
    expect((await request(s.app).delete(`/api/studies/${up.body.id}`)).status).toBe(204);
    expect((await request(s.app).get(`/api/studies/${up.body.id}`)).status).toBe(404);
  });
});

describe("security", () => {
  it("with a token, every /api route (SSE and downloads too) needs it; health checks do not", async () => {
    const t = createServer({ dataDir: join(root, "data-auth"), workers: 1, token: "s3cret-token" });
    await t.ready;
    const srv = await listen(t, 0, "127.0.0.1");
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      for (const path of [
        "/api/studies",
        "/api/models",
        "/api/openapi.json",
        "/api/jobs/x/events",
        "/api/jobs/x/results/tv/download",
      ]) {
        const r = await request(t.app).get(path);
        expect(r.status, path).toBe(401);
        expect(r.body.error.code).toBe("unauthorized");
        expect((await request(t.app).get(path).set("Authorization", "Bearer wrong-token!")).status).toBe(401);
      }
      // The scheme is case-insensitive (RFC 7235 2.1): "bearer", "BEARER" and "Bearer" all work.
      for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"])
        expect(
          (await request(t.app).get("/api/studies").set("Authorization", `${scheme} s3cret-token`)).status,
          scheme,
        ).toBe(200);
      expect(
        (await request(t.app).get("/api/studies").set("Authorization", "Basic s3cret-token")).status,
      ).toBe(401);
      expect((await fetch(`${url}/api/studies`)).status).toBe(401);
      expect((await request(t.app).get("/healthz")).status).toBe(200);
      // Security headers from helmet.
      const h = await request(t.app).get("/healthz");
      expect(h.headers["x-content-type-options"]).toBe("nosniff");
      expect(h.headers["access-control-allow-origin"]).toBeUndefined();
    } finally {
      srv.close();
      await t.close();
    }
  });

  it("bad percent-encoding in a path is a 400, an unsupported JSON charset a 415 (never a 500)", async () => {
    for (const path of ["/api/studies/%E0%A4%A", "/api/jobs/%zz", "/api/studies/%"]) {
      const r = await request(s.app).get(path);
      expect(r.status, path).toBe(400);
      expect(r.body.error, path).toMatchObject({ code: "bad_path" });
    }
    for (const cs of ["iso-8859-1", "koi8-r"]) {
      const charset = await request(s.app)
        .post("/api/jobs")
        .set("Content-Type", `application/json; charset=${cs}`)
        .send('{"study":"x"}');
      expect(charset.status, cs).toBe(415);
      expect(charset.body.error).toMatchObject({ code: "unsupported_charset" });
      expect(charset.body.error.message).toContain(cs);
    }
    expect(logs.filter((l) => /internal error/.test(l))).toEqual([]);
  });

  it("a body that does not decode is a 400 about the body; a malformed multipart upload a 400 (never a 500)", async () => {
    for (const encoding of ["gzip", "deflate"]) {
      const r = await request(s.app)
        .post("/api/jobs")
        .set("Content-Type", "application/json")
        .set("Content-Encoding", encoding)
        .send("not compressed");
      expect(r.status, encoding).toBe(400);
      expect(r.body.error, encoding).toMatchObject({ code: "bad_body" });
    }
    const bodies = [
      // Ends inside its first part.
      [
        "multipart/form-data; boundary=xyz",
        '--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.nii"\r\n\r\nabc',
      ],
      // No boundary.
      ["multipart/form-data", "abc"],
    ];
    for (const [type, body] of bodies) {
      const r = await request(s.app).post("/api/studies").set("Content-Type", type).send(body);
      expect(r.status, type).toBe(400);
      expect(r.body.error, type).toMatchObject({ code: "bad_upload", field: "files" });
    }
    expect(logs.filter((l) => /internal error/.test(l))).toEqual([]);
    expect((await request(s.app).get("/healthz")).status).toBe(200);
  });

  it("rate-limits job creation per client", async () => {
    const t = createServer({ dataDir: join(root, "data-rate"), workers: 1, jobRateLimit: 2 });
    try {
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await request(t.app).post("/api/jobs").send({})).status);
      expect(codes).toEqual([400, 400, 429]);
    } finally {
      await t.close();
    }
  });
});

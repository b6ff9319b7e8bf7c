/* eslint-disable @typescript-eslint/no-explicit-any -- the API's JSON bodies */
/**
 * Job specs a hostile or mistaken client may send: every method parameter has a type and a range
 * (400 naming the field, the server stays up), priors and modalities are checked at submission,
 * API answers name priors by their API name and speak API words, a score method that fails
 * while running leaves the job's classical methods to finish, and a job's methods take the
 * defaults of its acquisition.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { packageRoot } from "../../src/package-root.js";
import { createServer, type ScoreReconServer } from "../../server/app.js";
import { resolveJobSpec } from "../../server/spec.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-spec-"));
let s: ScoreReconServer;
let mr: string, ct: string, small: string;

const volume = (n: number, kind: "brain" | "ct-body", slices = 1) => {
  const data = new Float32Array(slices * n * n);
  for (let k = 0; k < slices; k++) data.set(generatePhantom(kind, n, 700 + k).data, k * n * n);
  return makeVolume(slices, n, n, data, {
    modality: kind === "brain" ? "MR" : "CT",
    units: kind === "brain" ? "arbitrary" : "HU",
  });
};

async function waitFor(id: string, states: string[]): Promise<any> {
  for (let i = 0; i < 2400; i++) {
    const j = s.jobs.get(id)!;
    if (states.includes(j.state)) return j;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} never reached ${states.join("/")}`);
}

beforeAll(async () => {
  s = createServer({ dataDir: join(root, "data"), workers: 1, jobRateLimit: 1000 });
  await s.ready;
  mr = (await s.storage.addStudy("demo", 0, [volume(32, "brain")], ["mr"])).id;
  ct = (await s.storage.addStudy("demo", 0, [volume(32, "ct-body")], ["ct"])).id;
  small = (await s.storage.addStudy("demo", 0, [volume(40, "brain", 2)], ["small mr"])).id;
});
afterAll(async () => {
  await s?.close();
});

describe("hostile method parameters", () => {
  it.each([
    ["score", { steps: 1e9 }, "methods[0].steps"],
    ["score", { samples: 1e6 }, "methods[0].samples"],
    ["tv", { iterations: 1e12 }, "methods[0].iterations"],
    ["score", { cg: 1e9 }, "methods[0].cg"],
    ["score", { steps: 2.5 }, "methods[0].steps"],
    ["score", { samples: 0 }, "methods[0].samples"],
    ["wavelet", { levels: 40 }, "methods[0].levels"],
    ["score", { seed: -1 }, "methods[0].seed"],
    ["score", { steps: "75" }, "methods[0].steps"],
    ["fbp", { filter: 3 }, "methods[0].filter"],
    ["score", { model: "/etc" }, "methods[0].model"],
  ])("%s %j is a 400 naming %s; nothing is queued", async (name, params, field) => {
    const modalityOf = name === "fbp" ? ct : mr;
    const r = await request(s.app)
      .post("/api/jobs")
      .send({ study: modalityOf, methods: [{ name, params }] });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.field).toBe(field);
    expect(r.body.error.message.startsWith(`${field}: `)).toBe(true);
    expect(r.body.error.message).not.toMatch(/--|\n/);
    expect(s.jobs.list()).toEqual([]);
  });

  it("seeds past 2**31 - 1 (a method's largest seed) and noise past 1e9 are a 400 naming the field", async () => {
    for (const [spec, field, study] of [
      [{ seed: 2 ** 31 }, "seed", mr],
      [{ mri: { seed: 2 ** 31 } }, "mri.seed", mr],
      [{ mri: { noiseSigma: 1e300 } }, "mri.noiseSigma", mr],
      [{ ct: { noise: { kind: "gaussian", sigma: 1e300 } } }, "ct.noise.sigma", ct],
    ] as const) {
      const methods = [{ name: study === mr ? "zero-filled" : "fbp" }];
      const r = await request(s.app)
        .post("/api/jobs")
        .send({ study, methods, ...spec });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.field).toBe(field);
    }
    expect(s.jobs.list()).toEqual([]);
  });

  it("an unknown parameter's message lists the parameters the API takes, not 'model'", async () => {
    const r = await request(s.app)
      .post("/api/jobs")
      .send({ study: mr, methods: [{ name: "score", params: { stepz: 3 } }] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/has no parameter 'stepz' \(it takes: steps, .*\)$/);
    expect(r.body.error.message).not.toMatch(/\bmodel\b/);
  });

  it("the server is still up and answering after them", async () => {
    expect((await request(s.app).get("/healthz")).status).toBe(200);
    expect((await request(s.app).get("/api/jobs")).body.jobs).toEqual([]);
  });

  it("the OpenAPI document gives every method's parameters with their type and range", async () => {
    const doc = (await request(s.app).get("/api/openapi.json")).body;
    const methods = doc.components.schemas.JobSpec.properties.methods.items.oneOf;
    const score = methods.find((m: any) => m.properties.name.const === "score");
    expect(score.properties.params.properties.steps).toMatchObject({
      type: "integer",
      minimum: 1,
      maximum: 2000,
    });
    expect(score.properties.params.properties.start).toMatchObject({ enum: ["tv", "ls"] });
    expect(score.properties.params.properties.model).toBeUndefined();
    expect(score.properties.params.additionalProperties).toBe(false);
    const names = methods.map((m: any) => m.properties.name.const);
    expect(names).toEqual(expect.arrayContaining(["zero-filled", "fbp", "tv", "langevin"]));
  });
});

describe("priors and modalities at submission", () => {
  it("a CT prior for an MRI study is a 400 naming 'model', in API words", async () => {
    const r = await request(s.app)
      .post("/api/jobs")
      .send({ study: mr, methods: [{ name: "tv" }, { name: "score" }], model: "ct" });
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe("model");
    expect(r.body.error.message).toMatch(
      /^model: prior 'ct' is a CT prior; this is MRI data \(set 'model' to an MRI prior/,
    );
    expect(r.body.error.message).not.toMatch(/--model/);
    expect(r.body.error.message).not.toContain(packageRoot());
  });

  it("a study that says MR run as CT (or CT as MRI) is a 400 naming 'modality'", async () => {
    for (const [study, modality, says] of [
      [mr, "ct", "MR"],
      [ct, "mri", "CT"],
    ]) {
      const r = await request(s.app)
        .post("/api/jobs")
        .send({ study, modality, methods: [{ name: "tv" }] });
      expect(r.status).toBe(400);
      expect(r.body.error.field).toBe("modality");
      expect(r.body.error.message).toMatch(new RegExp(`^modality: the series is ${says}`));
    }
  });

  it("a study smaller than the prior's training images runs; the plan names the prior by its API name", async () => {
    const r = await request(s.app)
      .post("/api/jobs")
      .send({
        study: small,
        slices: [0, 1],
        methods: [{ name: "score", params: { steps: 2, samples: 1 } }],
        model: "mri",
      });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const job = await waitFor(r.body.id, ["done", "failed"]);
    expect(job.state, JSON.stringify(job.error)).toBe("done");
    const view = (await request(s.app).get(`/api/jobs/${r.body.id}`)).body;
    expect(view.methods[0].params.model).toBe("mri");
    expect(JSON.stringify(view)).not.toContain(packageRoot());
  }, 120_000);

  it("a score method that fails while running leaves the classical methods to finish", async () => {
    // A user prior whose description passes the submission check but whose weights are missing.
    const broken = join(root, "data", "models", "broken");
    mkdirSync(broken, { recursive: true });
    for (const f of ["model.json", "prior.json"])
      copyFileSync(join(packageRoot(), "models", "mri", f), join(broken, f));
    const r = await request(s.app)
      .post("/api/jobs")
      .send({
        study: small,
        methods: [
          { name: "score", params: { steps: 2, samples: 1 } },
          { name: "tv", params: { iterations: 20 } },
        ],
        model: "broken",
      });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const job = await waitFor(r.body.id, ["done", "failed"]);
    expect(job.state).toBe("failed");
    expect(job.error.message).toMatch(/^score: prior 'broken' has no weights\.bin/);
    expect(job.error.message).not.toMatch(/--model|\/models\//);
    expect(job.progress.tv.done).toBe(2);
    const tv = await request(s.app).get(`/api/jobs/${r.body.id}/results/tv/slices/1`);
    expect(tv.status).toBe(200);
    const nifti = await request(s.app).get(`/api/jobs/${r.body.id}/results/tv/download`);
    expect(nifti.status).toBe(200);
  }, 120_000);
});

describe("defaults of the job's acquisition", () => {
  it("score on sparse-view CT takes that kind's defaults; given values and other view counts keep theirs", () => {
    const plan = (views: number, params: Record<string, number> = {}) =>
      resolveJobSpec(
        { study: ct, ct: { views }, methods: [{ name: "score", params }] },
        s.storage.study.bind(s.storage),
        () => undefined,
      ).methods[0].params;
    expect(plan(23)).toMatchObject({ steps: 60, cg: 5, samples: 1 });
    expect(plan(60)).toMatchObject({ steps: 40, cg: 5, samples: 1 });
    expect(plan(23, { steps: 12 })).toMatchObject({ steps: 12, cg: 5 });
  });
});

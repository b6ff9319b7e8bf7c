/* eslint-disable @typescript-eslint/no-explicit-any -- the API's JSON bodies */
/**
 * Priors trained through the API (POST /api/models) on an uploaded phantom study, with a tiny
 * network (channels 8, size 16) for a few steps: it reaches ready with events on the way, is
 * listed with its data described by study id (no server path), and a job using it by name
 * completes; bad specs are 400s naming the field, duplicate names 409; a long training is
 * cancelled within a step with its checkpoint; the delete rules (shipped 403, in use 409).
 */
import { mkdtempSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeVolume } from "../../src/io/index.js";
import { createServer, listen, type ScoreReconServer } from "../../server/app.js";
import { tinyTraining } from "./training-helpers.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-models-"));
const dataDir = join(root, "data");
const N = 32;
let s: ScoreReconServer;
let server: Server;
let base: string;
let study: any;

async function until(f: () => Promise<boolean>, what: string, tries = 2400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never: ${what}`);
}

const model = async (name: string) => (await request(s.app).get(`/api/models/${name}`)).body;

beforeAll(async () => {
  s = createServer({ dataDir, workers: 1, jobRateLimit: 1000 });
  await s.ready;
  server = await listen(s, 0, "127.0.0.1");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const data = new Float32Array(3 * N * N);
  for (let k = 0; k < 3; k++) data.set(generatePhantom("brain", N, 40 + k).data, k * N * N);
  const path = join(root, "brain.nii.gz");
  await writeVolume(path, makeVolume(3, N, N, data, { modality: "MR" }));
  const up = await request(s.app).post("/api/studies").field("modality", "MR").attach("files", path);
  expect(up.status, JSON.stringify(up.body)).toBe(201);
  study = up.body;
});

afterAll(async () => {
  server?.close();
  await s?.close();
});

describe("training priors through the API", () => {
  it("answers bad specs with a 400 naming the field, unknown studies and models with a 404", async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ name: undefined }, 400, "name"],
      [{ name: "../etc" }, 400, "name"],
      [{ steps: 0 }, 400, "steps"],
      [{ steps: 2.5 }, 400, "steps"],
      [{ batch: 1000 }, 400, "batch"],
      [{ size: 4 }, 400, "size"],
      [{ modality: "pet" }, 400, "modality"],
      [{ modality: "ct" }, 400, "modality"],
      [{ network: { channels: 6, channelMult: [1] } }, 400, "network.channels"],
      [{ augment: ["flip", "twirl"] }, 400, "augment"],
      [{ studies: [] }, 400, "studies"],
      [{ studies: ["nope"] }, 404, "studies[0]"],
      [{ series: ["nope"] }, 404, "series"],
      [{ slices: [2, 9] }, 400, "slices"],
      [{ init: "nope" }, 404, "init"],
      [{ init: "ct" }, 400, "init"],
      [{ extra: 1 }, 400, "body"],
    ];
    for (const [patch, status, field] of cases) {
      const res = await request(s.app)
        .post("/api/models")
        .send(tinyTraining("bad", study.id, patch));
      expect(res.status, `${JSON.stringify(patch)}: ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.body.error.field, JSON.stringify(patch)).toBe(field);
      expect(res.body.error.message).toMatch(new RegExp(`^${field.replace(/[[\]]/g, "\\$&")}: `));
    }
    expect((await request(s.app).get("/api/models/bad")).status).toBe(404);
  });

  it("trains to ready with progress and grid events; listed; a job using it by name completes", async () => {
    const created = await request(s.app).post("/api/models").send(tinyTraining("foot", study.id));
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    expect(created.body).toMatchObject({ name: "foot", steps: 6, shipped: false });
    expect(["queued", "training"]).toContain(created.body.state);
    const dup = await request(s.app).post("/api/models").send(tinyTraining("foot", study.id));
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: "duplicate_name", field: "name" });
    expect((await request(s.app).post("/api/models").send(tinyTraining("mri", study.id))).status).toBe(409);

    const text = await (await fetch(`${base}/api/models/foot/events`)).text();
    const events = text
      .split("\n\n")
      .filter((b) => b.includes("event:"))
      .map((b) => [/event: (.*)/.exec(b)![1], JSON.parse(/data: (.*)/.exec(b)![1])] as [string, any]);
    expect(events[0][0]).toBe("snapshot");
    expect(events.at(-1)).toEqual(["state", expect.objectContaining({ state: "ready", step: 6 })]);
    const steps = events.filter(([t, e]) => t === "progress" && e.loss !== undefined).map(([, e]) => e.step);
    expect(steps.at(-1)).toBe(6);
    expect(events.some(([t, e]) => t === "grid" && e.step === 6)).toBe(true);
    // The last checkpoint's grid is published with the prior.
    expect(
      readFileSync(join(dataDir, "models", "foot", "samples.png"))
        .subarray(1, 4)
        .toString(),
    ).toBe("PNG");

    const m = await model("foot");
    expect(m).toMatchObject({ state: "ready", step: 6, steps: 6, runs: [0], etaSeconds: null });
    expect(m.loss.map((p: number[]) => p[0])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(m.stepsPerSecond).toBeGreaterThan(0);
    expect(m.prior).toMatchObject({ modality: "mri", steps: 6, imageSize: 16 });
    const grid = await request(s.app).get("/api/models/foot/grid");
    expect(grid.status).toBe(200);
    expect(grid.headers["content-type"]).toMatch(/image\/png/);

    const list = (await request(s.app).get("/api/models")).body.models;
    const listed = list.find((x: any) => x.name === "foot");
    expect(listed).toMatchObject({ shipped: false, prior: { modality: "mri" } });
    expect(listed.prior.dataFiles).toEqual([
      { source: expect.stringContaining(`study ${study.id}`), count: 3 },
    ]);
    expect(JSON.stringify(listed)).not.toContain(root);

    const job = await request(s.app)
      .post("/api/jobs")
      .send({
        study: study.id,
        slices: [0, 1],
        methods: [{ name: "score", params: { steps: 3 } }],
        model: "foot",
      });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    await until(async () => ["done", "failed"].includes(s.jobs.get(job.body.id)!.state), "job done");
    expect(s.jobs.get(job.body.id)!.state).toBe("done");
  }, 180_000);

  it("cancels a training within a step, with its checkpoint; the delete rules", async () => {
    const created = await request(s.app)
      .post("/api/models")
      .send(tinyTraining("long", study.id, { steps: 100_000, checkpointEvery: 100_000 }));
    expect(created.status).toBe(202);
    await until(async () => (await model("long")).step >= 2, "two steps");
    const del = await request(s.app).delete("/api/models/long");
    expect(del.status).toBe(202);
    expect(del.body).toEqual({ name: "long", state: "cancelling" });
    await until(async () => (await model("long")).state === "cancelled", "cancelled");
    const m = await model("long");
    // Stopped where it was asked to, a checkpoint written there.
    const state = JSON.parse(
      readFileSync(join(dataDir, "trainings", "long", "checkpoint", "train-state.json"), "utf8"),
    );
    expect(state.step).toBe(m.step);
    expect(m.step).toBeLessThan(100);
    expect((await request(s.app).get("/api/models")).body.models.map((x: any) => x.name)).not.toContain(
      "long",
    );
    expect((await request(s.app).delete("/api/models/long")).status).toBe(204);
    expect((await request(s.app).get("/api/models/long")).status).toBe(404);

    const shipped = await request(s.app).delete("/api/models/mri");
    expect(shipped.status).toBe(403);
    expect(shipped.body.error.code).toBe("shipped");
    expect((await request(s.app).delete("/api/models/nope")).status).toBe(404);

    // A prior a running job uses is not deleted; once the job ends it is.
    const job = await request(s.app)
      .post("/api/jobs")
      .send({ study: study.id, methods: [{ name: "score", params: { steps: 2000 } }], model: "foot" });
    expect(job.status).toBe(201);
    const busy = await request(s.app).delete("/api/models/foot");
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatchObject({ code: "in_use", field: "name" });
    expect(busy.body.error.message).toContain(job.body.id);
    await request(s.app).delete(`/api/jobs/${job.body.id}`);
    await until(async () => s.jobs.isFinal(s.jobs.get(job.body.id)!), "job cancelled");
    expect((await request(s.app).delete("/api/models/foot")).status).toBe(204);
    expect((await request(s.app).get("/api/models")).body.models.map((x: any) => x.name)).not.toContain(
      "foot",
    );
    // The name is free again.
    expect(
      (
        await request(s.app)
          .post("/api/models")
          .send(tinyTraining("foot", study.id, { steps: 1 }))
      ).status,
    ).toBe(202);
    await until(async () => (await model("foot")).state === "ready", "ready again");
  }, 180_000);

  it("a graceful stop leaves a training queued with a checkpoint where it stopped; the next start resumes there", async () => {
    const dir = join(root, "data-stop");
    const a = createServer({ dataDir: dir, workers: 1 });
    await a.ready;
    const up = await a.storage.addStudy(
      "test",
      0,
      [s.storage.volume(study.id, study.series[0].id)!],
      ["phantom"],
    );
    const t = await request(a.app)
      .post("/api/models")
      .send(tinyTraining("stopped", up.id, { steps: 100_000, checkpointEvery: 100_000 }));
    expect(t.status).toBe(202);
    await until(async () => a.trainings.get("stopped")!.step >= 2, "two steps");
    await a.close();
    const saved = JSON.parse(readFileSync(join(dir, "trainings", "stopped", "training.json"), "utf8"));
    expect(saved.state).toBe("queued");
    const state = JSON.parse(
      readFileSync(join(dir, "trainings", "stopped", "checkpoint", "train-state.json"), "utf8"),
    );
    expect(state.step).toBeGreaterThanOrEqual(2);
    const b = createServer({ dataDir: dir, workers: 1 });
    await b.ready;
    try {
      await until(async () => b.trainings.get("stopped")!.runs.length === 2, "a second run");
      // Not a restart from 0 (a graceful stop is no crash: restarts stays 0).
      expect(b.trainings.get("stopped")).toMatchObject({ runs: [0, state.step], restarts: 0 });
      expect((await request(b.app).delete("/api/models/stopped")).status).toBe(202);
      await until(async () => b.trainings.get("stopped")!.state === "cancelled", "cancelled");
    } finally {
      await b.close();
    }
  }, 120_000);
});

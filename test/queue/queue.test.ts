/**
 * Scale-out against a real redis-server: a server job's slices run on two `scorerecon worker`
 * processes and give the same bytes as the embedded pipeline; a worker killed mid-task has its
 * task taken over; tasks that complete before they are waited for count as done; cancel stops
 * both workers; a training runs on a worker process, and killing that worker hands it to the
 * other, which resumes it from its checkpoint. Skipped, with a message, only where redis-server is
 * not installed outside CI (.ci/run installs it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { createServer as netServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue, QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { readVolume, writeVolume } from "../../src/io/index.js";
import { QueuePool } from "../../src/queue/queue-pool.js";
import { redisConnection, redisOutages } from "../../src/queue/redis-connection.js";
import { SLICE_QUEUE } from "../../src/queue/task-codec.js";
import { TRAIN_QUEUE } from "../../src/queue/train-task.js";
import { parseMethods } from "../../src/recon/methods.js";
import { reconstruct } from "../../src/recon/reconstruct.js";
import { createServer, type ScoreReconServer } from "../../server/app.js";
import { commandPath, runCli } from "../helpers.js";
import { tinyTraining } from "../server/training-helpers.js";

const redisBin = commandPath("redis-server");
if (!redisBin && process.env.CI)
  throw new Error("redis-server is missing: .ci/run installs the redis-server package");
if (!redisBin)
  console.warn(
    "skipping the Redis queue tests: redis-server is not installed (apt-get install redis-server)",
  );

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scorerecon-queue-"));
const N = 96;
const shippedMri = new URL("../../models/mri", import.meta.url).pathname;
const SLICES = 8;
let redis: ChildProcess;
let url: string;
/** The slice queue, to watch and to empty between tests. */
let queue: Queue;
let trainQueue: Queue;
let queueConnection: Redis;
const children: ChildProcess[] = [];

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = netServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

function startWorker(dataDir: string, log: string[]): ChildProcess {
  const child = spawn(
    process.execPath,
    [bin, "worker", "--redis", url, "--data-dir", dataDir, "--concurrency", "1", "--lock-ms", "2000"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stderr!.on("data", (c: Buffer) => log.push(...c.toString().trim().split("\n")));
  children.push(child);
  return child;
}

/**
 * Runs `f` with `n` worker processes on `dataDir`; afterwards, pass or fail, the workers are gone
 * and the queue is empty, so that no test's workers or tasks reach the next test.
 */
async function withWorkers<T>(
  dataDir: string,
  n: number,
  f: (workers: ChildProcess[], logs: string[][]) => Promise<T>,
): Promise<T> {
  // The shared folder exists before the workers start (a worker refuses a missing one).
  mkdirSync(dataDir, { recursive: true });
  const logs = Array.from({ length: n }, (): string[] => []);
  const workers = logs.map((log) => startWorker(dataDir, log));
  try {
    return await f(workers, logs);
  } finally {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((done) => {
            if (w.exitCode !== null || w.signalCode !== null) return done(undefined);
            w.once("exit", done);
            w.kill("SIGKILL");
          }),
      ),
    );
    await queue.obliterate({ force: true });
    await trainQueue.obliterate({ force: true });
  }
}

const volume = () => {
  const data = new Float32Array(SLICES * N * N);
  for (let k = 0; k < SLICES; k++) data.set(generatePhantom("brain", N, 300 + k).data, k * N * N);
  return makeVolume(SLICES, N, N, data, { modality: "MR" });
};

async function withServer<T>(
  dataDir: string,
  f: (s: ScoreReconServer, study: string) => Promise<T>,
): Promise<T> {
  const s = createServer({ dataDir, workers: 2, redisUrl: url });
  await s.ready;
  try {
    const path = join(root, `study-${Math.random().toString(36).slice(2)}.nii.gz`);
    await writeVolume(path, volume());
    const up = await request(s.app).post("/api/studies").field("modality", "MR").attach("files", path);
    expect(up.status).toBe(201);
    return await f(s, up.body.id);
  } finally {
    await s.close();
  }
}

async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 120_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const acquisition = {
  modality: "mri" as const,
  rows: N,
  cols: N,
  mask: { kind: "random" as const, acceleration: 4, centerFraction: 0.08, seed: 0 },
  noiseSigma: 0,
};

beforeAll(async () => {
  if (!redisBin) return;
  const port = await freePort();
  redis = spawn(
    redisBin,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  url = `redis://127.0.0.1:${port}`;
  redisOutages(url).log = () => {}; // "connection lost" until redis-server listens
  queueConnection = redisConnection(url);
  queueConnection.on("error", () => {}); // refused until redis-server listens
  await waitFor(
    "redis",
    async () => (await queueConnection.ping().catch(() => "")) === "PONG" || undefined,
    10_000,
  );
  queue = new Queue(SLICE_QUEUE, { connection: queueConnection });
  trainQueue = new Queue(TRAIN_QUEUE, { connection: queueConnection });
}, 20_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await queue?.close();
  await trainQueue?.close();
  queueConnection?.disconnect();
  redis?.kill("SIGKILL");
});

describe.skipIf(!redisBin)("Redis queue (BullMQ)", () => {
  it("two worker processes complete an 8-slice job with the embedded run's bytes", async () => {
    const dataDir = join(root, "data-identical");
    await withWorkers(dataDir, 2, async (_, logs) => {
      const spec = "zero-filled,tv:iterations=60,score:steps=4:seed=2";
      const [queued, embedded] = await Promise.all([
        withServer(dataDir, async (s, study) => {
          const res = await request(s.app)
            .post("/api/jobs")
            .send({
              study,
              methods: [
                { name: "zero-filled" },
                { name: "tv", params: { iterations: 60 } },
                { name: "score", params: { steps: 4, seed: 2 } },
              ],
            });
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          const job = await waitFor("the job", () => {
            const j = s.jobs.get(res.body.id)!;
            return ["done", "failed", "cancelled"].includes(j.state) ? j : undefined;
          });
          expect(job.state, JSON.stringify(job.error)).toBe("done");
          expect(job.progress.score.done).toBe(SLICES);
          return Object.fromEntries(
            ["zero-filled", "tv", "score"].map((m) => [m, s.storage.result(job.id, m)!.data]),
          );
        }),
        reconstruct({ acquisition, methods: parseMethods(spec, "mri"), volume: volume() }),
      ]);
      for (const r of embedded.results)
        expect(Buffer.from(queued[r.method].buffer).equals(Buffer.from(r.volume.data.buffer)), r.method).toBe(
          true,
        );
      // Both workers took part.
      for (const log of logs) expect(log.filter((l) => / slice \d+ done/.test(l)).length).toBeGreaterThan(0);
    });
  }, 180_000);

  it("a worker killed mid-task has its task taken over: the job completes, no slice twice or corrupt", async () => {
    const dataDir = join(root, "data-kill");
    // About 0.6 s a slice on an idle core: long beside the 100 ms between looks at the queue,
    // short beside the test's time.
    const methods = [{ name: "tv", params: { iterations: 400 } }];
    const spec = "tv:iterations=400";
    // BullMQ's stalled-job check reports the killed worker's task when it hands it on.
    const eventsConnection = redisConnection(url);
    const events = new QueueEvents(SLICE_QUEUE, { connection: eventsConnection });
    const stalled: string[] = [];
    events.on("stalled", ({ jobId }) => stalled.push(jobId));
    await events.waitUntilReady();
    let done: Float32Array;
    try {
      done = await withWorkers(dataDir, 2, ([a]) =>
        withServer(dataDir, async (s, study) => {
          const res = await request(s.app).post("/api/jobs").send({ study, methods });
          // Kill worker A while it computes a slice (both workers busy).
          await waitFor("two active tasks", async () =>
            (await queue.getActiveCount()) >= 2 ? true : undefined,
          );
          a.kill("SIGKILL");
          const job = await waitFor("the job", () => {
            const j = s.jobs.get(res.body.id)!;
            return ["done", "failed", "cancelled"].includes(j.state) ? j : undefined;
          });
          expect(job.state, JSON.stringify(job.error)).toBe("done");
          // The kill landed mid-task: its task was found stalled and run again (on a loaded
          // machine a live worker's lock may lapse too, and its task runs again to the same bytes).
          expect(stalled.length).toBeGreaterThanOrEqual(1);
          const files = readdirSync(join(dataDir, "jobs", job.id, "slices"), { recursive: true }).map(String);
          expect(files.filter((f) => f.endsWith(".json"))).toHaveLength(SLICES);
          expect(files.filter((f) => f.endsWith(".npy"))).toHaveLength(SLICES);
          return s.storage.result(job.id, "tv")!.data;
        }),
      );
    } finally {
      await events.close();
      eventsConnection.disconnect();
    }
    const embedded = await reconstruct({
      acquisition,
      methods: parseMethods(spec, "mri"),
      volume: volume(),
      workers: 2,
    });
    expect(Buffer.from(done.buffer).equals(Buffer.from(embedded.results[0].volume.data.buffer))).toBe(true);
  }, 240_000);

  it("reconstruct --queue runs a batch on the workers with the local run's results", async () => {
    const dataDir = join(root, "data-cli");
    await withWorkers(dataDir, 2, async () => {
      const path = join(root, "cli-study.nii.gz");
      await writeVolume(path, volume());
      const args = [
        "reconstruct",
        "--in",
        path,
        "--modality",
        "mri",
        "--method",
        "zero-filled,tv:iterations=40",
      ];
      const local = await runCli(...args, "--out", join(root, "cli-local"));
      expect(local.code, local.err).toBe(0);
      const queued = await runCli(
        ...args,
        "--out",
        join(dataDir, "out"),
        "--queue",
        url,
        "--data-dir",
        dataDir,
      );
      expect(queued.code, queued.err).toBe(0);
      expect(queued.err).not.toMatch(/Warning/);
      for (const m of ["zero-filled", "tv"]) {
        const [a, b] = await Promise.all([
          readVolume(join(root, "cli-local", `${m}.nii.gz`)),
          readVolume(join(dataDir, "out", `${m}.nii.gz`)),
        ]);
        expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer)), m).toBe(true);
      }
      const outside = await runCli(
        ...args,
        "--out",
        join(root, "elsewhere"),
        "--queue",
        url,
        "--data-dir",
        dataDir,
      );
      expect(outside.code).toBe(2);
      expect(outside.err).toMatch(/--out must be inside --data-dir/);
    });
  }, 120_000);

  it("a task that keeps failing fails the run, naming the method, the slice and the reason", async () => {
    const dataDir = join(root, "data-fail");
    // A prior whose description passes the pipeline's check but whose weights are missing: the
    // task fails on the worker, when it loads the prior.
    const broken = join(root, "broken-prior");
    mkdirSync(broken);
    for (const f of ["model.json", "prior.json"]) copyFileSync(join(shippedMri, f), join(broken, f));
    await withWorkers(dataDir, 1, async () => {
      const pool = new QueuePool(url, dataDir, "failing", 4, "fail-group", { attempts: 2 });
      try {
        const v = volume();
        await expect(
          reconstruct({
            acquisition,
            methods: parseMethods(`score:model=${broken}:steps=2`, "mri"),
            volume: makeVolume(1, N, N, v.data.slice(0, N * N), { modality: "MR" }),
            pool,
          }),
        ).rejects.toThrow(/score slice 0 failed on a queue worker: .*broken-prior has no weights\.bin/);
      } finally {
        await pool.close();
      }
    });
  }, 60_000);

  it("tasks that finish at once (their results already stored) are not taken for failed or lost", async () => {
    const dataDir = join(root, "data-instant");
    await withWorkers(dataDir, 2, async () => {
      const run = async () => {
        const pool = new QueuePool(url, dataDir, "instant", 16);
        try {
          return await reconstruct({
            acquisition,
            methods: parseMethods("zero-filled", "mri"),
            volume: volume(),
            pool,
          });
        } finally {
          await pool.close();
        }
      };
      const first = await run();
      // A new group each time: every task is queued again, and a worker finds its slice in the
      // store and completes it within milliseconds, often before the pool starts waiting for it.
      for (let k = 0; k < 10; k++) {
        const again = await run();
        expect(Buffer.from(again.results[0].volume.data.buffer)).toEqual(
          Buffer.from(first.results[0].volume.data.buffer),
        );
      }
    });
  }, 60_000);

  it("cancel stops both workers' running tasks and the waiting ones", async () => {
    const dataDir = join(root, "data-cancel");
    await withWorkers(dataDir, 2, (_, logs) =>
      withServer(dataDir, async (s, study) => {
        const res = await request(s.app)
          .post("/api/jobs")
          .send({ study, methods: [{ name: "tv", params: { iterations: 100000 } }] });
        await waitFor("two active tasks", async () =>
          (await queue.getActiveCount()) >= 2 ? true : undefined,
        );
        expect((await request(s.app).delete(`/api/jobs/${res.body.id}`)).status).toBe(202);
        const job = await waitFor("cancelled", () =>
          s.jobs.get(res.body.id)!.state === "cancelled" ? true : undefined,
        );
        expect(job).toBe(true);
        await waitFor(
          "idle workers",
          async () =>
            (await queue.getActiveCount()) + (await queue.getWaitingCount()) === 0 ? true : undefined,
          60_000,
        );
        for (const log of logs) expect(log.some((l) => /cancelled/.test(l))).toBe(true);
        expect(existsSync(join(dataDir, "jobs", res.body.id, "slices"))).toBe(false);
      }),
    );
  }, 120_000);

  it("a training runs on a worker process; killing it hands it to the other, which resumes from the checkpoint", async () => {
    const dataDir = join(root, "data-train");
    await withWorkers(dataDir, 2, (workers, logs) =>
      withServer(dataDir, async (s, study) => {
        const spec = tinyTraining("queued-prior", study, {
          steps: 40,
          checkpointEvery: 5,
          grid: { count: 0 },
        });
        const res = await request(s.app).post("/api/models").send(spec);
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        // The worker that took it, once it is past the checkpoint at step 10.
        const first = await waitFor("a worker training", () => {
          const k = logs.findIndex((l) => l.some((x) => /training .* started/.test(x)));
          return k >= 0 && s.trainings.get("queued-prior")!.step >= 12 ? k : undefined;
        });
        expect(s.trainings.get("queued-prior")!.step).toBeLessThan(40);
        workers[first].kill("SIGKILL");
        const r = await waitFor("the training", () => {
          const t = s.trainings.get("queued-prior")!;
          return ["ready", "failed", "cancelled"].includes(t.state) ? t : undefined;
        });
        expect(r.state, JSON.stringify(r.error)).toBe("ready");
        expect(r.step).toBe(40);
        // Run twice: from 0 on the first worker, from a checkpoint (10 or later) on the other.
        expect(r.runs).toHaveLength(2);
        expect(r.runs[0]).toBe(0);
        expect(r.runs[1]).toBeGreaterThanOrEqual(10);
        expect(r.runs[1] % 5).toBe(0);
        const other = logs[1 - first];
        expect(other.some((l) => /training .* started/.test(l))).toBe(true);
        expect(other.some((l) => /training .* done at step 40/.test(l))).toBe(true);
        const listed = (await request(s.app).get("/api/models")).body.models;
        expect(listed.map((m: { name: string }) => m.name)).toContain("queued-prior");
      }),
    );
  }, 180_000);
});

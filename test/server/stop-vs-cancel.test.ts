/**
 * A server stop and a user's cancel are told apart by the abort reason's type (`ServerStopping`,
 * `Cancelled`, src/errors.ts), never by its message: the slice runner sees the reason the job's
 * queue aborted with, a cancelled job ends cancelled, a stopped server's job is saved queued; the
 * same for the Redis job queue where redis-server is installed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer as netServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeVolume } from "../../src/image/volume.js";
import { Cancelled, ServerStopping } from "../../src/errors.js";
import type { SliceRunner } from "../../src/recon/pool.js";
import type { SliceOutput } from "../../src/recon/slice-task.js";
import { JobService } from "../../server/jobs.js";
import { RedisJobQueue } from "../../server/redis-queue.js";
import { resolveJobSpec } from "../../server/spec.js";
import { Storage } from "../../server/storage.js";
import { commandPath } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-stop-"));

/** A runner whose tasks run until aborted, then fail with the abort's reason (as SlicePool does). */
function blockingRunner(reasons: unknown[], started: () => void): SliceRunner {
  return {
    size: 1,
    run: (_task, _onIteration, signal) =>
      new Promise<SliceOutput>((_resolve, reject) => {
        started();
        signal!.addEventListener("abort", () => {
          reasons.push(signal!.reason);
          reject(signal!.reason);
        });
      }),
    close: async () => {},
  };
}

async function setUp(dir: string, makeQueue?: ConstructorParameters<typeof JobService>[3]) {
  const storage = new Storage(join(root, dir));
  const study = await storage.addStudy(
    "demo",
    0,
    [makeVolume(1, 16, 16, undefined, { modality: "MR" })],
    [""],
  );
  const reasons: unknown[] = [];
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const jobs = new JobService(
    storage,
    blockingRunner(reasons, () => started()),
    1,
    makeQueue,
  );
  const plan = resolveJobSpec(
    { study: study.id, methods: [{ name: "zero-filled" }] },
    storage.study.bind(storage),
    () => undefined,
  );
  const job = await jobs.create(study.id, plan);
  await running;
  return { storage, jobs, job, reasons };
}

async function settled(jobs: JobService, id: string, state: string) {
  for (let i = 0; i < 400 && jobs.get(id)?.state !== state; i++) await new Promise((r) => setTimeout(r, 25));
  return jobs.get(id)?.state;
}

describe("stop versus cancel (embedded queue)", () => {
  it("a user's cancel aborts with Cancelled and ends the job cancelled", async () => {
    const { jobs, job, reasons } = await setUp("cancel");
    expect(jobs.cancel(job.id)).toBe(true);
    expect(await settled(jobs, job.id, "cancelled")).toBe("cancelled");
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(Cancelled);
    expect(reasons[0]).not.toBeInstanceOf(ServerStopping);
    await jobs.close();
  });

  it("a server stop aborts with ServerStopping and saves the job queued", async () => {
    const { storage, jobs, job, reasons } = await setUp("stop");
    await jobs.close();
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(ServerStopping);
    expect(reasons[0]).not.toBeInstanceOf(Cancelled);
    expect(new Storage(storage.root).job(job.id)).toMatchObject({ state: "queued", restarts: 0 });
  });

  it("a cancel whose reason's message reads 'server stopping' is still a cancel", async () => {
    const { jobs, job } = await setUp("message");
    // The type decides, not the text.
    (jobs.queue as unknown as { running: Map<string, AbortController> }).running
      .get(job.id)!
      .abort(new Cancelled("server stopping"));
    expect(await settled(jobs, job.id, "cancelled")).toBe("cancelled");
    await jobs.close();
  });
});

const redisBin = commandPath("redis-server");
let redis: ChildProcess | undefined;
afterAll(() => redis?.kill("SIGKILL"));

async function startRedis(): Promise<string> {
  const port = await new Promise<number>((resolve) => {
    const s = netServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
  redis = spawn(redisBin, ["--port", String(port), "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  const { checkRedis } = await import("../../src/queue/redis-connection.js");
  for (let i = 0; ; i++)
    try {
      await checkRedis(url, "redis", 1000);
      return url;
    } catch (e) {
      if (i > 50) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
}

describe.skipIf(!redisBin)("stop versus cancel (Redis job queue)", () => {
  it("cancel aborts with Cancelled, a stop with ServerStopping", async () => {
    const url = await startRedis();
    const queue = (
      run: (id: string, signal: AbortSignal) => Promise<void>,
      cancelled: (id: string) => void,
    ) => new RedisJobQueue(url, 1, run, cancelled);
    const a = await setUp("redis-cancel", queue);
    a.jobs.cancel(a.job.id);
    expect(await settled(a.jobs, a.job.id, "cancelled")).toBe("cancelled");
    expect(a.reasons[0]).toBeInstanceOf(Cancelled);
    await a.jobs.close();

    const b = await setUp("redis-stop", queue);
    await b.jobs.close();
    expect(b.reasons[0]).toBeInstanceOf(ServerStopping);
    expect(new Storage(b.storage.root).job(b.job.id)).toMatchObject({ state: "queued" });
  });
});

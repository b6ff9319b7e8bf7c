/**
 * `serve`, `worker` and `reconstruct --queue` given something they cannot use (a Redis that does
 * not answer, a port in use or out of range, a data folder that is a file or missing): one line
 * on stderr naming the flag and what was given up and why, exit 2 by itself (a run that has to be
 * killed fails), and nothing created. And a worker whose Redis goes away later logs one line per
 * outage, not a stack trace per retry, and still stops on SIGTERM. No assertion is on elapsed time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer as netServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeVolume } from "../../src/io/index.js";
import { commandPath } from "../helpers.js";

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scorerecon-startup-"));
const children: ChildProcess[] = [];
const servers: Server[] = [];
const redisBin = commandPath("redis-server");

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/**
 * Runs the built CLI. A run still going after `limit` ms is killed (its code is then null and its
 * signal SIGKILL, which expectOneLineError refuses): a hang detector far past the 3 s the commands
 * themselves give an unanswering Redis, not a speed bound.
 */
function cli(args: string[], env: Record<string, string> = {}, limit = 30_000): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, REDIS_URL: "", SCORERECON_TOKEN: "", ...env },
  });
  children.push(child);
  let out = "",
    err = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), limit);
  return new Promise((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    }),
  );
}

/** Exit 2, exactly one stderr line (matching `message`), no stack trace, nothing on stdout. */
function expectOneLineError(r: Run, message: RegExp) {
  expect(r.signal, r.err).toBeNull();
  expect(r.code, r.err).toBe(2);
  const lines = r.err.trim().split("\n");
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(/^scorerecon: error: /);
  expect(lines[0]).toMatch(message);
  expect(r.err).not.toMatch(/\n\s+at |Unhandled error event/);
  expect(r.out).toBe("");
}

function listening(server: Server = netServer()): Promise<number> {
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = netServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

const aFile = join(root, "a-file");
writeFileSync(aFile, "not a folder\n");
const dataDir = join(root, "data");
mkdirSync(dataDir);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const s of servers) s.close();
});

describe("worker: bad --redis or --data-dir", () => {
  it.concurrent(
    "an unreachable Redis: one line naming --redis and the refused connection, exit 2",
    async () => {
      const r = await cli(["worker", "--redis", "redis://127.0.0.1:1", "--data-dir", dataDir]);
      expectOneLineError(
        r,
        /^scorerecon: error: --redis redis:\/\/127\.0\.0\.1:1: cannot reach Redis \(connect ECONNREFUSED 127\.0\.0\.1:1\)$/,
      );
    },
  );

  it.concurrent("a host that does not resolve", async () => {
    const r = await cli(["worker", "--redis", "redis://no-such-host.invalid:6379", "--data-dir", dataDir]);
    expectOneLineError(r, /--redis redis:\/\/no-such-host\.invalid:6379: cannot reach Redis \(.*ENOTFOUND/);
  });

  it.concurrent("a server that never answers: given up after 3 s", async () => {
    const port = await listening(netServer(() => {}));
    const r = await cli(["worker", "--redis", `redis://127.0.0.1:${port}`, "--data-dir", dataDir]);
    expectOneLineError(r, /cannot reach Redis \(no answer within 3 s\)/);
  });

  it.concurrent("not a URL, and a password kept out of the message", async () => {
    const r = await cli(["worker", "--redis", "notaurl", "--data-dir", dataDir]);
    expectOneLineError(r, /--redis notaurl: not a Redis URL/);
    const p = await cli(["worker", "--redis", "redis://user:hunter2@127.0.0.1:1", "--data-dir", dataDir]);
    expectOneLineError(p, /--redis redis:\/\/user:\*\*\*@127\.0\.0\.1:1: cannot reach Redis/);
    expect(p.err).not.toMatch(/hunter2/);
  });

  it.concurrent("a data folder that is a file, or that does not exist", async () => {
    const file = await cli(["worker", "--redis", "redis://127.0.0.1:1", "--data-dir", aFile]);
    expectOneLineError(file, /--data-dir .*a-file: not a folder/);
    const missing = await cli(["worker", "--redis", "redis://127.0.0.1:1", "--data-dir", join(root, "nope")]);
    expectOneLineError(missing, /--data-dir .*nope: no such folder/);
  });
});

describe("serve: bad --port, --data-dir or REDIS_URL", () => {
  it.concurrent("a port in use: one line naming --port, nothing created, nothing left running", async () => {
    const port = await listening();
    const dir = join(root, "serve-in-use");
    const r = await cli(["serve", "--port", String(port), "--data-dir", dir]);
    expectOneLineError(r, new RegExp(`^scorerecon: error: --port ${port}: address already in use$`));
    expect(existsSync(dir)).toBe(false);
  });

  it.concurrent("a port out of range, before anything is created", async () => {
    const dir = join(root, "serve-99999");
    const r = await cli(["serve", "--port", "99999", "--data-dir", dir]);
    expectOneLineError(r, /--port must be <= 65535, got '99999'/);
    expect(existsSync(dir)).toBe(false);
    expectOneLineError(await cli(["serve", "--port", "-1", "--data-dir", dir]), /--port must be >= 0/);
  });

  it.concurrent("upload limits out of range or not integers, before anything is created", async () => {
    const dir = join(root, "serve-limits");
    for (const [flag, value, message] of [
      ["--max-decompressed-mib", "0", /--max-decompressed-mib must be >= 1, got '0'/],
      ["--max-file-mib", "1.5", /--max-file-mib must be an integer, got '1\.5'/],
      ["--max-files", "lots", /--max-files must be a number, got 'lots'/],
    ] as const)
      expectOneLineError(await cli(["serve", "--port", "0", "--data-dir", dir, flag, value]), message);
    expect(existsSync(dir)).toBe(false);
  });

  it.concurrent("a data folder that is a file, or under a file", async () => {
    expectOneLineError(
      await cli(["serve", "--port", "0", "--data-dir", aFile]),
      /--data-dir .*a-file: not a folder/,
    );
    expectOneLineError(
      await cli(["serve", "--port", "0", "--data-dir", join(aFile, "data")]),
      /--data-dir .*a-file\/data: /,
    );
  });

  it.concurrent("an unreachable REDIS_URL: one line naming it, exit 2, nothing created", async () => {
    const dir = join(root, "serve-redis");
    const r = await cli(["serve", "--port", "0", "--data-dir", dir], { REDIS_URL: "redis://127.0.0.1:1" });
    expectOneLineError(
      r,
      /^scorerecon: error: REDIS_URL redis:\/\/127\.0\.0\.1:1: cannot reach Redis \(connect ECONNREFUSED/,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it.concurrent(
    "--worker-memory with REDIS_URL (no embedded pool): refused, before Redis is tried",
    async () => {
      const dir = join(root, "serve-redis-memory");
      const r = await cli(["serve", "--port", "0", "--data-dir", dir, "--worker-memory", "512"], {
        REDIS_URL: "redis://127.0.0.1:1",
      });
      expectOneLineError(
        r,
        /^scorerecon: error: --worker-memory: is for the embedded pool; with REDIS_URL set/,
      );
      expect(existsSync(dir)).toBe(false);
    },
  );
});

describe("reconstruct --queue", () => {
  it("an unreachable Redis: one line naming --queue, exit 2, no output written", async () => {
    const input = join(root, "brain.nii.gz");
    await writeVolume(input, makeVolume(1, 32, 32, generatePhantom("brain", 32, 1).data, { modality: "MR" }));
    const shared = join(root, "shared");
    mkdirSync(shared);
    const out = join(shared, "out");
    const r = await cli([
      "reconstruct",
      "--in",
      input,
      "--modality",
      "mri",
      "--method",
      "zero-filled",
      "--out",
      out,
      "--queue",
      "redis://127.0.0.1:1",
      "--data-dir",
      shared,
    ]);
    expectOneLineError(r, /^scorerecon: error: --queue redis:\/\/127\.0\.0\.1:1: cannot reach Redis/);
    expect(existsSync(out)).toBe(false);
  });
});

describe.skipIf(!redisBin)("a worker whose Redis goes away after the start", () => {
  it("logs one line per outage, reconnects, and stops on SIGTERM during an outage", async () => {
    const port = await freePort();
    const startRedis = () => {
      const redis = spawn(
        redisBin,
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: "ignore" },
      );
      children.push(redis);
      return redis;
    };
    const waitFor = async (what: string, f: () => boolean, ms = 10_000) => {
      const t0 = Date.now();
      while (!f()) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    let redis = startRedis();
    // The worker starts once redis-server listens (a refused start is exit 2: try again).
    let worker: ChildProcess | undefined;
    let out = "",
      err = "";
    await waitFor("the worker's start", () => {
      if (/scorerecon worker: /.test(out)) return true;
      if (!worker || worker.exitCode !== null) {
        out = err = "";
        worker = spawn(
          process.execPath,
          [bin, "worker", "--redis", `redis://127.0.0.1:${port}`, "--data-dir", dataDir, "--lock-ms", "2000"],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        children.push(worker);
        worker.stdout!.on("data", (c: Buffer) => (out += c.toString()));
        worker.stderr!.on("data", (c: Buffer) => (err += c.toString()));
      }
      return false;
    });
    const lines = () => err.trim().split("\n").filter(Boolean);
    expect(err).toBe("");

    // An outage of ~2 s: ioredis retries many times, one line is logged.
    redis.kill("SIGKILL");
    await waitFor("the outage line", () => /connection lost/.test(err));
    await new Promise((r) => setTimeout(r, 2000));
    expect(lines(), err).toHaveLength(1);
    // The first error of the outage is the reset of the open socket or the refusal of a retry.
    expect(lines()[0]).toMatch(
      new RegExp(
        `Redis redis://127\\.0\\.0\\.1:${port}: connection lost \\((read ECONNRESET|connect ECONNREFUSED .*)\\); retrying$`,
      ),
    );
    redis = startRedis();
    await waitFor("the reconnection line", () => /connected again/.test(err));

    // A second outage: one more line; SIGTERM then stops the worker although Redis is gone.
    redis.kill("SIGKILL");
    await waitFor("the second outage line", () => lines().length === 3);
    await new Promise((r) => setTimeout(r, 1000));
    expect(lines(), err).toHaveLength(3);
    expect(err).not.toMatch(/\n\s+at |Unhandled error event/);
    const exited = new Promise<number | null>((resolve) => worker!.on("exit", (code) => resolve(code)));
    worker!.kill("SIGTERM");
    // It stops by itself, cleanly (exit 0), although Redis is gone.
    expect(await exited).toBe(0);
  }, 40_000);
});

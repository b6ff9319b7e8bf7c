/**
 * `serve` from its first moment: /healthz and /readyz are probed on fresh connections from the
 * start of the process until it is ready, and every connection the port accepts gets an HTTP
 * answer (503 while starting, then 200); none is left hanging.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { mkdtempSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "scorerecon-startup-probe-"));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

interface Probe {
  path: string;
  /** The HTTP status, "refused" before the port is bound, or the error that ended it. */
  outcome?: number | string;
  done: Promise<void>;
}

function probe(port: number, path: string): Probe {
  const p: Probe = { path, done: Promise.resolve() };
  p.done = new Promise<void>((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.resume();
      res.on("end", () => {
        p.outcome = res.statusCode;
        resolve();
      });
    });
    req.on("error", (e: NodeJS.ErrnoException) => {
      p.outcome = e.code === "ECONNREFUSED" ? "refused" : `error ${e.code ?? e.message}`;
      resolve();
    });
    req.end();
  });
  return p;
}

describe("serve start-up", () => {
  it("answers every /healthz and /readyz probe from the moment the port is bound", async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [bin, "serve", "--port", String(port), "--data-dir", join(root, "data"), "--workers", "1"],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, REDIS_URL: "", SCORERECON_TOKEN: "" } },
    );
    children.push(child);
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const probes: Probe[] = [];
    let ready = false;
    // New probes every few milliseconds until a /readyz says 200 (or the server exits).
    while (!ready && child.exitCode === null) {
      for (const path of ["/healthz", "/readyz"]) {
        const p = probe(port, path);
        probes.push(p);
        if (path === "/readyz") void p.done.then(() => void (p.outcome === 200 && (ready = true)));
      }
      await new Promise((r) => setTimeout(r, 3));
    }
    expect(child.exitCode, stderr).toBeNull();
    // A probe the server accepted but never answers stays pending: wait for every one, with a
    // bound far past any answer (a hang, not a slow answer, is what it catches).
    const hung = Symbol("hung");
    const settled = await Promise.race([
      Promise.all(probes.map((p) => p.done)),
      new Promise<symbol>((r) => setTimeout(() => r(hung), 20_000)),
    ]);
    const unanswered = probes.filter((p) => p.outcome === undefined);
    expect(
      unanswered.map((p) => p.path),
      `${unanswered.length} of ${probes.length} probes never answered`,
    ).toEqual([]);
    expect(settled).not.toBe(hung);
    const outcomes = new Set(probes.map((p) => p.outcome));
    // Refused before the port is bound; afterwards an answer: 503 while starting, then 200.
    expect([...outcomes].filter((o) => !(o === "refused" || o === 200 || o === 503))).toEqual([]);
    // The probes did reach the server while it was starting, not only once it was ready.
    expect(probes.some((p) => p.outcome === 503)).toBe(true);
    child.kill("SIGTERM");
  }, 60_000);
});

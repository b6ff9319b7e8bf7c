/**
 * A slice pool's worker process does not outlive a parent that was killed (SIGKILL: no cleanup
 * runs there), even in the middle of a synchronous task that keeps its event loop busy: it stops
 * at the task's next progress report, long before the task would end (about 100 s).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const parentScript = fileURLToPath(new URL("../fixtures/workers/orphaning-parent.mjs", import.meta.url));

/** Running: a process that exited but was not reaped yet (a zombie, state Z) is not. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
};

describe("slice pool worker of a killed parent", () => {
  it("exits mid-task when its parent is SIGKILLed", async () => {
    const parent = spawn(process.execPath, [parentScript], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    parent.stdout.on("data", (c: Buffer) => (out += c.toString()));
    while (!out.includes("\n")) await once(parent.stdout, "data");
    const worker = Number(out.split("\n")[0]);
    expect(worker).toBeGreaterThan(0);
    expect(alive(worker)).toBe(true);
    parent.kill("SIGKILL");
    await once(parent, "exit");
    // The task has ~100 s left; the worker must be gone within 15 s (it takes well under 1 s).
    for (let i = 0; i < 150 && alive(worker); i++) await new Promise((r) => setTimeout(r, 100));
    const stillAlive = alive(worker);
    if (stillAlive) process.kill(worker, "SIGKILL");
    expect(stillAlive).toBe(false);
  });
});

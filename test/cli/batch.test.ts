/**
 * Batch reconstruction: a folder of three studies, killed mid-run and resumed; worker processes give
 * the same results as the calling thread.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readVolume } from "../../src/io/index.js";
import { runCli } from "../helpers.js";

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "scorerecon-batch-"));
const studies = join(dir, "studies");
const method = "zero-filled,tv:iterations=400";

/** Finished slice records under a batch output folder: path -> [mtime, content]. */
function finishedSlices(out: string): Map<string, [number, string]> {
  const found = new Map<string, [number, string]>();
  if (!existsSync(out)) return found;
  for (const study of readdirSync(out)) {
    const slices = join(out, study, ".slices");
    if (!existsSync(slices)) continue;
    for (const m of readdirSync(slices))
      for (const f of readdirSync(join(slices, m)).filter((f) => f.endsWith(".json"))) {
        const p = join(slices, m, f);
        found.set(p, [statSync(p).mtimeMs, readFileSync(join(slices, m, f.replace(".json", ".npy")), "hex")]);
      }
  }
  return found;
}

describe("reconstruct on a folder of studies", () => {
  it("survives a kill mid-run: --resume recomputes nothing finished and ends equal to an uninterrupted run", async () => {
    mkdirSync(studies);
    for (const seed of [1, 2, 3])
      expect(
        (
          await runCli(
            "phantom",
            "--kind",
            "brain",
            "--size",
            "96",
            "--count",
            "4",
            "--seed",
            String(seed * 10),
            "--out",
            join(studies, `study${seed}.nii.gz`),
          )
        ).code,
      ).toBe(0);
    const args = ["reconstruct", "--in", studies, "--modality", "mri", "--method", method];

    // The reference: one uninterrupted run.
    const full = join(dir, "full");
    const ref = await runCli(...args, "--out", full);
    expect(ref.code, ref.err).toBe(0);
    expect(ref.out).toMatch(/study1 \(1\/3\)/);

    // Killed (SIGKILL, no chance to clean up) once some slices of the second study are finished.
    const out = join(dir, "resumed");
    const child = spawn(process.execPath, [bin, ...args, "--out", out], { stdio: "ignore" });
    const killedAt = await new Promise<number>((resolve, reject) => {
      const poll = setInterval(() => {
        const done = [...finishedSlices(out).keys()].filter((p) => p.includes("study2")).length;
        if (done >= 2) {
          clearInterval(poll);
          child.kill("SIGKILL");
          resolve(done);
        }
      }, 20);
      child.on("exit", () => {
        clearInterval(poll);
        reject(new Error("the run finished before it could be killed"));
      });
    });
    await new Promise((r) => child.once("exit", r));
    expect(killedAt).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(out, "study3", "tv.nii.gz"))).toBe(false);
    const before = finishedSlices(out);

    const again = await runCli(...args, "--out", out, "--resume");
    expect(again.code, again.err).toBe(0);
    // Study 1 was finished: all its 8 slice results come from the store.
    expect(again.out).toMatch(/study1 \(1\/3\)[\s\S]*8 slice result\(s\) resumed/);
    // Nothing finished before the kill was recomputed or rewritten.
    const after = finishedSlices(out);
    for (const [p, [mtime, bytes]] of before) {
      expect(after.get(p)?.[0]).toBe(mtime);
      expect(after.get(p)?.[1]).toBe(bytes);
    }
    expect(after.size).toBe(3 * 2 * 4);
    // Same outputs as the uninterrupted run, and a summary with per-study and per-slice rows.
    for (const s of ["study1", "study2", "study3"])
      for (const m of ["zero-filled", "tv"]) {
        const [a, b] = await Promise.all([
          readVolume(join(full, s, `${m}.nii.gz`)),
          readVolume(join(out, s, `${m}.nii.gz`)),
        ]);
        expect(b.slices).toBe(4);
        expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
      }
    const csv = readFileSync(join(out, "metrics.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe("study,method,slice,psnr,ssim,nmse,seconds");
    expect(csv).toHaveLength(1 + 3 * 2 * (1 + 4));
    expect(csv.filter((l) => /^study2,tv,mean,/.test(l))).toHaveLength(1);
    // The mean row's seconds are the mean of the slices' (not their sum).
    const tvRows = csv.filter((l) => l.startsWith("study2,tv,")).map((l) => l.split(","));
    const perSlice = tvRows.filter((r) => r[2] !== "mean").map((r) => Number(r[6]));
    expect(Number(tvRows.find((r) => r[2] === "mean")![6])).toBeCloseTo(
      perSlice.reduce((a, b) => a + b) / perSlice.length,
      2,
    );
    const json = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
    expect(json.studies.map((s: { study: string }) => s.study)).toEqual(["study1", "study2", "study3"]);
    expect(json.studies[1].perSlice.tv).toHaveLength(4);
  }, 240_000);

  it("--workers 2 writes the same volumes as one thread", async () => {
    const one = join(dir, "w1");
    const two = join(dir, "w2");
    const args = [
      "reconstruct",
      "--in",
      join(studies, "study1.nii.gz"),
      "--modality",
      "mri",
      "--slices",
      "0:3",
    ];
    expect((await runCli(...args, "--method", "tv:iterations=50", "--out", one)).code).toBe(0);
    const r = await runCli(...args, "--method", "tv:iterations=50", "--out", two, "--workers", "2");
    expect(r.code, r.err).toBe(0);
    const [a, b] = await Promise.all([
      readVolume(join(one, "tv.nii.gz")),
      readVolume(join(two, "tv.nii.gz")),
    ]);
    expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
  }, 120_000);

  it("refuses a missing input, an empty folder and bad flags with one line, once for the batch", async () => {
    mkdirSync(join(dir, "empty"));
    for (const [extra, message] of [
      [["--in", join(dir, "nope")], /nope: no such file/],
      [["--in", join(dir, "empty")], /empty: no studies in this folder/],
      [["--in", studies, "--workers", "0"], /--workers must be >= 1/],
      [["--in", studies, "--method", "magic"], /^scorerecon: error: unknown method 'magic'/],
      [["--in", studies, "--queue", "redis://127.0.0.1:1"], /^scorerecon: error: --queue needs --data-dir/],
    ] as const) {
      const r = await runCli(
        "reconstruct",
        "--modality",
        "mri",
        "--method",
        "tv",
        "--out",
        join(dir, "x"),
        ...extra,
      );
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    }
  });
  it("reports a bad study, reconstructs the others and still writes the summary", async () => {
    const folder = join(dir, "mixed");
    mkdirSync(folder);
    for (const name of ["a", "c"])
      expect(
        (await runCli("phantom", "--kind", "brain", "--size", "32", "--out", join(folder, `${name}.nii.gz`)))
          .code,
      ).toBe(0);
    writeFileSync(join(folder, "b.npy"), "not an array\n");
    const out = join(dir, "mixed-out");
    const r = await runCli(
      "reconstruct",
      "--in",
      folder,
      "--modality",
      "mri",
      "--method",
      "zero-filled",
      "--out",
      out,
    );
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/1 of 3 studies failed .*b: .*not a NumPy .npy file/);
    for (const name of ["a", "c"]) expect(existsSync(join(out, name, "zero-filled.nii.gz"))).toBe(true);
    const json = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
    expect(json.studies.map((s: { study: string }) => s.study)).toEqual(["a", "c"]);
    expect(json.failed).toEqual([{ study: "b", error: expect.stringMatching(/not a NumPy/) }]);
  });
});

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { vi } from "vitest";
import yauzl from "yauzl";
import { createRng } from "../operators/random.js";
import { main } from "../src/cli/main.js";

/** The path of an installed command (as `command -v` finds it), "" where it is not installed. */
export function commandPath(name: string): string {
  return spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim();
}

/** Seeded random Float32Array in [-0.5, 0.5) (or N(0,1) with normal = true). */
export function randomVector(n: number, seed: number, normal = false): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = normal ? rng.normal() : rng.uniform() - 0.5;
  return v;
}

/** Runs the CLI in-process, capturing stdout and stderr. */
export async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "",
    err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(args), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Extracts a zip (a file or bytes) into dir, flattening folders into file names. */
export function unzip(source: string | Buffer, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  return new Promise((resolve, reject) => {
    const onZip = (err: Error | null, zip?: yauzl.ZipFile) => {
      if (err || !zip) return reject(err);
      zip.on("entry", (e: yauzl.Entry) =>
        zip.openReadStream(e, (er, s) => {
          if (er || !s) return reject(er);
          const chunks: Buffer[] = [];
          s.on("data", (c: Buffer) => chunks.push(c));
          s.on("end", () => {
            writeFileSync(join(dir, e.fileName.replace(/\//g, "_")), Buffer.concat(chunks));
            zip.readEntry();
          });
        }),
      );
      zip.on("end", resolve);
      zip.readEntry();
    };
    if (typeof source === "string") yauzl.open(source, { lazyEntries: true }, onZip);
    else yauzl.fromBuffer(source, { lazyEntries: true }, onZip);
  });
}

/** A supertest body parser that keeps a binary answer (a zip, a .nii.gz) as one Buffer. */
export const binaryBody = ((res, cb) => {
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  res.on("end", () => cb(null, Buffer.concat(chunks)));
}) satisfies Parameters<import("supertest").Test["parse"]>[0];

/**
 * Starts `scorerecon serve` as a real process (port 0, one worker) on a data folder, records it in
 * `children` (for the caller to kill) and resolves with its URL once it prints it.
 */
export async function startServeProcess(
  bin: string,
  dataDir: string,
  children: ChildProcess[],
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [bin, "serve", "--port", "0", "--data-dir", dataDir, "--workers", "1"],
    {
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  children.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /open (http:\/\/\S+\/) /.exec(out);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  return { child, url };
}

/** `--engine` on the built binary: ONNX Runtime by default, tfjs on request, tfjs when ONNX Runtime is missing. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeVolume } from "../../src/io/index.js";

const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
const noOnnx = new URL("../fixtures/engine/no-onnxruntime.mjs", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "scorerecon-engine-"));
const image = join(dir, "brain.nii.gz");

beforeAll(async () => {
  await writeVolume(image, makeVolume(1, 96, 96, generatePhantom("brain", 96, 4).data));
});

function reconstruct(
  out: string,
  extra: string[],
  o: { env?: Record<string, string>; node?: string[] } = {},
) {
  const r = spawnSync(
    process.execPath,
    [
      ...(o.node ?? []),
      bin,
      "reconstruct",
      "--in",
      image,
      "--modality",
      "mri",
      "--method",
      "score:steps=3",
      "--out",
      join(dir, out),
      "--json",
      ...extra,
    ],
    { encoding: "utf8", env: { ...process.env, SCORERECON_ENGINE: "", ...o.env } },
  );
  const engineLines = r.stderr.split("\n").filter((l) => /engine|ONNX Runtime/.test(l));
  return {
    status: r.status,
    stderr: r.stderr,
    engineLines,
    psnr: r.status === 0 ? (JSON.parse(r.stdout).results[0].psnr as number) : NaN,
  };
}

describe("scorerecon reconstruct --engine", () => {
  it("runs the score method on ONNX Runtime by default, and on tfjs with --engine tfjs, to the same result", () => {
    const onnx = reconstruct("onnx", []);
    expect(onnx.status).toBe(0);
    expect(onnx.engineLines).toEqual([
      expect.stringMatching(/^scorerecon: inference engine onnx \(ONNX Runtime .*\)$/),
    ]);
    const tfjs = reconstruct("tfjs", ["--engine", "tfjs"]);
    expect(tfjs.status).toBe(0);
    expect(tfjs.engineLines).toEqual(["scorerecon: inference engine tfjs (TensorFlow.js wasm)"]);
    expect(Math.abs(onnx.psnr - tfjs.psnr)).toBeLessThan(0.01);
    // SCORERECON_ENGINE chooses when the flag is absent.
    expect(reconstruct("env", [], { env: { SCORERECON_ENGINE: "tfjs" } }).engineLines[0]).toMatch(
      /engine tfjs/,
    );
  }, 120_000);

  it("names the worker processes the pool has: --workers 3 on one slice of one method starts one", () => {
    const r = reconstruct("workers", ["--workers", "3"]);
    expect(r.status).toBe(0);
    expect(r.engineLines).toEqual([
      expect.stringMatching(
        /^scorerecon: inference engine onnx \(ONNX Runtime .*, \d+ threads? per evaluation\)$/,
      ),
    ]);
    expect(r.engineLines[0]).not.toMatch(/workers x/);
  }, 120_000);

  it("falls back to tfjs with one line when ONNX Runtime cannot be loaded; --engine onnx then exits 2", () => {
    const auto = reconstruct("fallback", [], { node: ["--import", noOnnx] });
    expect(auto.status).toBe(0);
    expect(auto.engineLines).toEqual([
      "scorerecon: ONNX Runtime is not available (Cannot find package 'onnxruntime-node'); inference engine tfjs (TensorFlow.js wasm)",
    ]);
    const forced = reconstruct("forced", ["--engine", "onnx"], { node: ["--import", noOnnx] });
    expect(forced.status).toBe(2);
    expect(forced.stderr).toBe(
      "scorerecon: error: ONNX Runtime is not available on this machine (Cannot find package 'onnxruntime-node'); use --engine tfjs\n",
    );
  }, 120_000);

  it("a bad --engine or SCORERECON_ENGINE exits 2 with one line, before any study is read", () => {
    const flag = reconstruct("bad", ["--engine", "gpu"]);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toBe("scorerecon: error: --engine must be one of auto, onnx, tfjs, got 'gpu'\n");
    const env = reconstruct("bad-env", [], { env: { SCORERECON_ENGINE: "cuda" } });
    expect(env.status).toBe(2);
    expect(env.stderr).toBe(
      "scorerecon: error: SCORERECON_ENGINE must be one of auto, onnx, tfjs, got 'cuda'\n",
    );
    expect(() => readFileSync(join(dir, "bad", "metrics.json"))).toThrow();
  });
});

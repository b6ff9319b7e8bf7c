import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readPng } from "../../src/io/png.js";
import { writeVolume } from "../../src/io/index.js";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { runCli } from "../helpers.js";

afterEach(() => vi.restoreAllMocks());

const run = runCli;

describe("scorerecon train and sample", () => {
  it("trains on NIfTI slices (PATH@RANGES), a DICOM folder and phantoms, then samples a grid", async () => {
    const dir = mkdtempSync(join(tmpdir(), "scorerecon-train-"));
    const slices = [0, 1, 2].map((s) => generatePhantom("brain", 32, s).data);
    const data = new Float32Array(3 * 32 * 32);
    slices.forEach((d, k) => data.set(d, k * 32 * 32));
    await writeVolume(join(dir, "brains.nii.gz"), makeVolume(3, 32, 32, data));
    const model = join(dir, "prior");
    const t = await run(
      "train",
      "--modality",
      "mri",
      "--data",
      `${join(dir, "brains.nii.gz")}@0:2`,
      "test/fixtures/dicom/series",
      "--axes",
      "axial,coronal",
      "--phantom",
      "brain",
      "--size",
      "16",
      "--steps",
      "12",
      "--batch",
      "2",
      "--channels",
      "8",
      "--channel-mult",
      "1,2,2,2",
      "--attention",
      "--grid",
      "4",
      "--grid-steps",
      "5",
      "--out",
      model,
      "--backend",
      "wasm",
    );
    expect(t.err).toMatch(/backend wasm/);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/trained at step 12/);
    for (const f of ["model.json", "weights.bin", "prior.json", "loss.csv", "loss.png", "samples.png"])
      expect(existsSync(join(model, f))).toBe(true);
    expect(readFileSync(join(model, "loss.csv"), "utf8").trim().split("\n")).toHaveLength(13);
    const info = JSON.parse(readFileSync(join(model, "prior.json"), "utf8"));
    expect(info.network).toMatchObject({ channels: 8, channelMult: [1, 2, 2, 2], attention: true });
    expect(info.data).toMatch(/^axial, coronal slices of 4 files .* \+ brain phantoms$/);
    // Every source with its slices; coronal views of 2-slice (or 1-slice) volumes are too small.
    expect(info.dataFiles).toEqual([
      { source: join(dir, "brains.nii.gz"), slices: "0:2", count: 2 },
      ...[0, 1, 2].map((k) => ({ source: `test/fixtures/dicom/series/ct${k}.dcm`, count: 1 })),
    ]);
    expect(info.augment).toEqual([
      "flip",
      "rot90",
      "rotate",
      "scale",
      "whole",
      "gamma",
      "contrast",
      "invert",
    ]);
    expect(info.axes).toEqual(["axial", "coronal"]);
    // --init with no network flags fine-tunes the same network: every tensor is copied.
    const f = await run(
      "train",
      "--modality",
      "mri",
      "--phantom",
      "brain",
      "--size",
      "16",
      "--steps",
      "2",
      "--batch",
      "2",
      "--grid",
      "0",
      "--init",
      model,
      "--out",
      join(dir, "tuned"),
    );
    expect(f.code).toBe(0);
    const [, copied, of] = f.out.match(/\((\d+) of (\d+) parameter tensors from /)!;
    expect(copied).toBe(of);
    const s = await run(
      "sample",
      "--model",
      model,
      "--count",
      "3",
      "--steps",
      "5",
      "--size",
      "20",
      "--out",
      join(dir, "grid.png"),
    );
    expect(s.code).toBe(0);
    const grid = readPng(join(dir, "grid.png"));
    expect([grid.rows, grid.cols]).toEqual([2 * 20 + 2, 2 * 20 + 2]);
  });

  it("bad input: no data, missing model, bad channels", async () => {
    expect((await run("train", "--modality", "mri", "--out", join(tmpdir(), "x"))).err).toMatch(
      /no training data/,
    );
    const m = await run("sample", "--model", "/nonexistent/prior", "--out", join(tmpdir(), "g.png"));
    expect(m.code).toBe(2);
    expect(m.err).toMatch(/prior \/nonexistent\/prior does not exist/);
    // Bad network flags: a one-line error naming the flag, exit code 2.
    const badFlag = (...flag: string[]) =>
      run("train", "--modality", "ct", "--phantom", "ct-body", ...flag, "--out", join(tmpdir(), "y"));
    const c = await badFlag("--channels", "10");
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/multiple of 4/);
    const l = await badFlag("--channel-mult", "1,x");
    expect(l.code).toBe(2);
    expect(l.err).toMatch(/--channel-mult must be a number, got 'x'/);
    const a = await badFlag("--axes", "axial,front");
    expect([a.code, a.err.trim().split("\n").length]).toEqual([2, 1]);
    expect(a.err).toMatch(/--axes/);
    const g = await badFlag("--augment", "flip,invert");
    expect([g.code, g.err]).toEqual([2, expect.stringMatching(/invert applies to MRI priors only/)]);
    const r = await badFlag("--data", "test/fixtures/dicom/series/ct0.dcm@0:5");
    expect([r.code, r.err]).toEqual([
      2,
      expect.stringMatching(/--slices 0:5 is outside .*ct0.dcm's 1 slices/),
    ]);
  });

  it("a bad --engine is refused before any training step: one line, exit code 2", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "scorerecon-engine-")), "prior");
    const r = await run(
      "train",
      "--modality",
      "mri",
      "--phantom",
      "brain",
      "--size",
      "8",
      "--steps",
      "2",
      "--batch",
      "1",
      "--channels",
      "4",
      "--channel-mult",
      "1",
      "--grid",
      "1",
      "--grid-steps",
      "2",
      "--backend",
      "cpu",
      "--engine",
      "bogus",
      "--out",
      out,
    );
    expect(r.code).toBe(2);
    expect(r.err).toBe("scorerecon: error: --engine must be one of auto, onnx, tfjs, got 'bogus'\n");
    expect(existsSync(out)).toBe(false);
    const s = await run(
      "sample",
      "--model",
      "/nonexistent/prior",
      "--engine",
      "bogus",
      "--out",
      join(tmpdir(), "g.png"),
    );
    expect(s.code).toBe(2);
    expect(s.err).toMatch(/^scorerecon: error: --engine must be one of/);
  });
});

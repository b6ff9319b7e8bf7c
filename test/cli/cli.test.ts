import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { lineMask } from "../../operators/masks.js";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { readVolume, writeVolume } from "../../src/io/index.js";
import { readNpy, writeNpy } from "../../src/io/npy.js";
import { runCli } from "../helpers.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "scorerecon-cli-"));
});
afterEach(() => vi.restoreAllMocks());

const run = runCli;

describe("scorerecon CLI", () => {
  it("phantom writes NIfTI, npy and png", async () => {
    for (const name of ["p.nii.gz", "p.npy", "p.png"]) {
      const r = await run("phantom", "--kind", "shepp-logan", "--size", "64", "--out", join(dir, name));
      expect(r.code).toBe(0);
      expect(existsSync(join(dir, name))).toBe(true);
    }
    const r = await run(
      "phantom",
      "--kind",
      "ct-body",
      "--size",
      "64",
      "--count",
      "3",
      "--out",
      join(dir, "ct.nii.gz"),
    );
    expect(r.out).toMatch(/3 ct-body slice/);
  });

  it("reconstruct --json (MRI) prints the documented object and writes each method", async () => {
    const out = join(dir, "mri");
    const r = await run(
      "reconstruct",
      "--in",
      join(dir, "p.nii.gz"),
      "--modality",
      "mri",
      "--accel",
      "4",
      "--center-fraction",
      "0.08",
      "--method",
      "zero-filled,tv:iterations=50",
      "--out",
      out,
      "--json",
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.modality).toBe("mri");
    expect(j.settings.acquisition.mask).toEqual({
      kind: "random",
      acceleration: 4,
      centerFraction: 0.08,
      seed: 0,
    });
    expect(j.results.map((x: { method: string }) => x.method)).toEqual(["zero-filled", "tv"]);
    for (const x of j.results)
      for (const k of ["psnr", "ssim", "nmse", "seconds"]) expect(typeof x[k]).toBe("number");
    expect(j.results[1].psnr).toBeGreaterThan(j.results[0].psnr);
    for (const f of ["zero-filled.nii.gz", "zero-filled.png", "tv.nii.gz", "tv.png", "metrics.json"])
      expect(existsSync(join(out, f))).toBe(true);
    expect(readdirSync(out).some((f) => f.endsWith(".tmp"))).toBe(false);
  });

  it("reconstruct --json (CT) from an HU volume keeps HU", async () => {
    const r = await run(
      "reconstruct",
      "--in",
      join(dir, "ct.nii.gz"),
      "--views",
      "23",
      "--method",
      "fbp,sirt:iterations=20",
      "--out",
      join(dir, "ct"),
      "--json",
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.modality).toBe("ct");
    expect(j.settings.acquisition).toMatchObject({ views: 23, detectors: 91, size: 64 });
    expect(j.settings.dataRange).toBeGreaterThan(1000);
  });

  it("simulate then reconstruct --measurements (prospective, no metrics)", async () => {
    const meas = join(dir, "k.npy");
    expect(
      (await run("simulate", "--in", join(dir, "p.npy"), "--modality", "mri", "--accel", "3", "--out", meas))
        .code,
    ).toBe(0);
    const k = readNpy(meas);
    expect(k.complex).toBe(true);
    expect(k.shape).toEqual([64, 64]);
    const r = await run(
      "reconstruct",
      "--measurements",
      meas,
      "--method",
      "zero-filled",
      "--out",
      join(dir, "pro"),
      "--json",
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).results[0].psnr).toBeNull();
    expect(JSON.parse(r.out).settings.description).toMatch(/mask from .*k\.mask\.npy/);
    // Without a mask file beside it, the mask is the non-zero samples, and says so.
    writeFileSync(join(dir, "k2.npy"), readFileSync(meas));
    const r2 = await run(
      "reconstruct",
      "--measurements",
      join(dir, "k2.npy"),
      "--modality",
      "mri",
      "--method",
      "zero-filled",
      "--out",
      join(dir, "pro2"),
      "--json",
    );
    expect(r2.code).toBe(0);
    expect(JSON.parse(r2.out).settings.description).toMatch(/mask from the non-zero samples of .*k2\.npy/);
  });

  it("--mask-file reproduces a given mask exactly (image-sized .npy and one-line .npy)", async () => {
    const line = lineMask("random", 64, { acceleration: 5, centerFraction: 0.1, seed: 9 });
    const full = new Uint8Array(64 * 64).map((_, i) => ((i * 7919) % 13 < 4 ? 1 : 0));
    await writeNpy(join(dir, "line.npy"), [64], line, "uint8");
    await writeNpy(join(dir, "full.npy"), [64, 64], full, "uint8");
    for (const [file, want] of [
      ["line.npy", Uint8Array.from({ length: 64 * 64 }, (_, i) => line[i % 64])],
      ["full.npy", full],
    ] as const) {
      const meas = join(dir, `m-${file}`);
      const r = await run(
        "simulate",
        "--in",
        join(dir, "p.npy"),
        "--modality",
        "mri",
        "--mask-file",
        join(dir, file),
        "--out",
        meas,
      );
      expect(r.code).toBe(0);
      expect(Array.from(readNpy(meas.replace(/\.npy$/, ".mask.npy")).data)).toEqual(Array.from(want));
    }
  });

  it.each([
    [
      [
        "reconstruct",
        "--in",
        "PHANTOM",
        "--modality",
        "mri",
        "--mask",
        "spiral",
        "--method",
        "tv",
        "--out",
        "X",
      ],
      /--mask must be one of random, equispaced, vd2d/,
    ],
    [
      ["reconstruct", "--in", "PHANTOM", "--modality", "ct", "--method", "zero-filled", "--out", "X"],
      /does not apply to CT/,
    ],
    [
      ["reconstruct", "--in", "PHANTOM", "--modality", "mri", "--method", "magic", "--out", "X"],
      /unknown method 'magic'/,
    ],
    [
      [
        "reconstruct",
        "--in",
        "PHANTOM",
        "--modality",
        "mri",
        "--accel",
        "0.5",
        "--method",
        "tv",
        "--out",
        "X",
      ],
      /--accel must be >= 1/,
    ],
    [
      [
        "reconstruct",
        "--in",
        "PHANTOM",
        "--modality",
        "mri",
        "--mask-file",
        "BADMASK",
        "--method",
        "tv",
        "--out",
        "X",
      ],
      /mask .* has shape 3x5, but the image is 64x64/,
    ],
    [
      ["reconstruct", "--in", "TEXT", "--modality", "mri", "--method", "tv", "--out", "X"],
      /not a NumPy .npy file/,
    ],
    [
      ["reconstruct", "--in", "PHANTOM", "--modality", "pet", "--method", "tv", "--out", "X"],
      /--modality must be one of mri, ct/,
    ],
    [
      ["reconstruct", "--in", "PHANTOM", "--modality", "mri", "--method", "tv", "--out", "X", "--bogus"],
      /^scorerecon: error: unknown option '--bogus' \(run with --help for usage\)$/m,
    ],
    [
      ["reconstruct", "--in", "PHANTOM", "--modality", "mri", "--method", "tv", "--out", "TEXT"],
      /--out .*text\.npy: not a folder \(a file of that name is in the way\)/,
    ],
    [
      ["eval", "--phantoms", "1", "--out", "TEXT/sub"],
      /--out .*text\.npy\/sub: a part of the path is a file, not a folder/,
    ],
    [["train", "--modality", "mri", "--steps", "2", "--out", "X"], /no training data/],
    [["sample", "--model", "nowhere", "--out", "X"], /--out must name a .png file/],
    [
      ["reconstruct", "--measurements", "NIFTI", "--modality", "mri", "--method", "tv", "--out", "X"],
      /p\.nii\.gz is not a measurement file/,
    ],
  ])("bad input %# gives one line and exit code 2", async (args, message) => {
    writeFileSync(join(dir, "text.npy"), "hello, not an array\n");
    await writeNpy(join(dir, "badmask.npy"), [3, 5], new Uint8Array(15).fill(1), "uint8");
    const map: Record<string, string> = {
      PHANTOM: join(dir, "p.npy"),
      TEXT: join(dir, "text.npy"),
      BADMASK: join(dir, "badmask.npy"),
      NIFTI: join(dir, "p.nii.gz"),
      X: join(dir, "bad-out"),
    };
    const r = await run(...args.map((a) => map[a] ?? a.replace(/^TEXT\//, `${map.TEXT}/`)));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(existsSync(join(dir, "bad-out"))).toBe(false);
  });
});

describe("the built scorerecon binary", () => {
  const bin = new URL("../../dist/src/cli/bin.js", import.meta.url).pathname;
  it("exits 2 with one line and no stack trace on bad input", () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        "reconstruct",
        "--in",
        "/nonexistent.nii.gz",
        "--modality",
        "ct",
        "--method",
        "fbp",
        "--out",
        join(dir, "x"),
      ],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("scorerecon: error: /nonexistent.nii.gz: no such file\n");
    expect(execFileSync(process.execPath, [bin, "--help"], { encoding: "utf8" })).toMatch(/reconstruct/);
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node")).toBe(true);
  });
});

describe("every number a user gives has a range; images must be finite and scorable", () => {
  const oneLine = (r: { code: number; err: string }, pattern: RegExp) => {
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(pattern);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(
      r.err
        .trim()
        .split("\n")
        .filter((l) => !/backend|Warning/.test(l)),
    ).toHaveLength(1);
  };

  it("numbers out of range, a noise spec with extra parts, a method listed twice: exit 2, one line", async () => {
    const out = join(dir, "ranges.npy");
    oneLine(
      await run("phantom", "--kind", "ellipses", "--size", "1e9", "--out", out),
      /--size must be <= 4096/,
    );
    oneLine(
      await run("phantom", "--kind", "ellipses", "--size", "2048", "--count", "100", "--out", out),
      /--count: 100 slice\(s\) of 2048x2048 is 419430400 voxels, more than 268435456/,
    );
    oneLine(await run("phantom", "--kind", "ellipses", "--seed", "-1", "--out", out), /--seed must be >= 0/);
    const nii = join(dir, "ranges.nii.gz");
    expect((await run("phantom", "--kind", "shepp-logan", "--size", "32", "--out", nii)).code).toBe(0);
    const sim = (...flags: string[]) =>
      run("simulate", "--in", nii, "--out", join(dir, "r-meas.npy"), ...flags);
    oneLine(await sim("--modality", "mri", "--accel", "1e9"), /--accel must be <= 64/);
    oneLine(await sim("--modality", "ct", "--views", "1e9"), /--views must be <= 4096/);
    oneLine(
      await sim("--modality", "ct", "--noise", "gaussian:1e308"),
      /gaussian:SIGMA must be <= 1000000000/,
    );
    oneLine(
      await sim("--modality", "ct", "--noise", "gaussian:1:2"),
      /--noise must be .* got 'gaussian:1:2'/,
    );
    const rec = (...flags: string[]) =>
      run("reconstruct", "--in", nii, "--out", join(dir, "r-out"), ...flags);
    oneLine(await rec("--method", "tv:iterations=20,tv:iterations=200"), /--method: 'tv' is listed twice/);
    oneLine(await rec("--method", "zero-filled", "--workers", "1e9"), /--workers must be <= 256/);
    const train = (...flags: string[]) =>
      run(
        "train",
        "--phantom",
        "brain",
        "--modality",
        "mri",
        "--steps",
        "1",
        "--out",
        join(dir, "r-t"),
        ...flags,
      );
    oneLine(await train("--size", "1e6"), /--size must be <= 512/);
    oneLine(
      await train("--channel-mult", "1,2,2,2,2,2,2"),
      /--channel-mult's level count must be <= 6, got '7'/,
    );
    oneLine(await train("--lr", "1e300"), /--lr must be <= 1/);
    expect(existsSync(join(dir, "r-out"))).toBe(false);
    expect(existsSync(join(dir, "r-t"))).toBe(false);
  });

  it("refuses a ground truth with NaN or one below the SSIM window, naming the file; a batch lists it as failed", async () => {
    const nan = new Float32Array(32 * 32).fill(1);
    nan[5] = NaN;
    await writeNpy(join(dir, "nan.npy"), [32, 32], nan, "float32");
    await writeNpy(join(dir, "tiny.npy"), [4, 4], new Float32Array(16).fill(1), "float32");
    const rec = (input: string, out: string) =>
      run(
        "reconstruct",
        "--in",
        input,
        "--modality",
        "mri",
        "--method",
        "zero-filled",
        "--out",
        join(dir, out),
      );
    oneLine(await rec(join(dir, "nan.npy"), "nan-out"), /nan\.npy: 1 of 1024 values are NaN or infinite/);
    oneLine(await rec(join(dir, "tiny.npy"), "tiny-out"), /tiny\.npy: the image is 4x4; .* at least 11x11/);
    expect(existsSync(join(dir, "nan-out"))).toBe(false);
    // A batch: the good study is written, the bad one listed, the summary written, exit 2.
    const batch = join(dir, "bad-batch");
    mkdirSync(batch);
    await writeVolume(
      join(batch, "a.nii.gz"),
      makeVolume(1, 32, 32, generatePhantom("brain", 32, 1).data, { modality: "MR" }),
    );
    writeFileSync(join(batch, "c.npy"), readFileSync(join(dir, "tiny.npy")));
    const r = await rec(batch, "bad-batch-out");
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/1 of 2 studies failed .*c: .*the image is 4x4/);
    const summary = JSON.parse(readFileSync(join(dir, "bad-batch-out", "metrics.json"), "utf8"));
    expect(summary.failed).toEqual([{ study: "c", error: expect.stringMatching(/4x4/) }]);
    expect(existsSync(join(dir, "bad-batch-out", "a", "zero-filled.nii.gz"))).toBe(true);
  });

  it("an --out that is the input file is refused and the input left as it was", async () => {
    const nii = join(dir, "same.nii");
    expect((await run("phantom", "--kind", "brain", "--size", "32", "--count", "3", "--out", nii)).code).toBe(
      0,
    );
    const before = readFileSync(nii);
    oneLine(
      await run("convert", "--in", nii, "--slices", "0:1", "--out", nii),
      /--out .*same\.nii is the input file/,
    );
    const npy = join(dir, "same.npy");
    expect((await run("convert", "--in", nii, "--out", npy)).code).toBe(0);
    oneLine(await run("simulate", "--in", npy, "--modality", "mri", "--out", npy), /is the input file/);
    expect(readFileSync(nii).equals(before)).toBe(true);
  });

  it("checks the numbers of a measurement's MEAS.json, naming the file and the field", async () => {
    const nii = join(dir, "sidecar.nii.gz");
    expect((await run("phantom", "--kind", "shepp-logan", "--size", "32", "--out", nii)).code).toBe(0);
    const meas = join(dir, "sidecar-meas.npy");
    expect(
      (await run("simulate", "--in", nii, "--modality", "ct", "--views", "20", "--out", meas)).code,
    ).toBe(0);
    const side = join(dir, "sidecar-meas.json");
    const good = JSON.parse(readFileSync(side, "utf8"));
    for (const size of [0, 2.5, "32", 1e7]) {
      writeFileSync(side, JSON.stringify({ ...good, acquisition: { ...good.acquisition, size } }));
      oneLine(
        await run("reconstruct", "--measurements", meas, "--method", "fbp", "--out", join(dir, "sc-out")),
        /sidecar-meas\.json: acquisition\.size must be an integer from 1 to 16384/,
      );
    }
  });
});

describe("info, convert, --slices and --format", () => {
  it("describes and converts volumes, and reconstructs selected slices into the chosen format", async () => {
    const nii = join(dir, "three.nii.gz");
    expect((await run("phantom", "--kind", "brain", "--size", "32", "--count", "3", "--out", nii)).code).toBe(
      0,
    );
    const info = await run("info", nii, "--json");
    expect(JSON.parse(info.out)).toMatchObject({ slices: 3, rows: 32, cols: 32, modality: "MR" });
    expect((await run("convert", "--in", nii, "--slices", "1:3", "--out", join(dir, "two.cfl"))).code).toBe(
      0,
    );
    expect(JSON.parse((await run("info", join(dir, "two.cfl"), "--json")).out)).toMatchObject({
      slices: 2,
      rows: 32,
    });
    const r = await run(
      "reconstruct",
      "--in",
      nii,
      "--slices",
      "0:1",
      "--modality",
      "mri",
      "--method",
      "zero-filled",
      "--format",
      "npy",
      "--out",
      join(dir, "fmt"),
      "--json",
    );
    expect(r.code).toBe(0);
    expect(readNpy(join(dir, "fmt", "zero-filled.npy")).shape).toEqual([32, 32]);
    const fourD = new URL("../fixtures/io/four-d.nii.gz", import.meta.url).pathname;
    expect((await run("convert", "--in", fourD, "--out", join(dir, "v.npy"))).err).toMatch(
      /4-D .* --volume K/,
    );
    expect((await run("convert", "--in", fourD, "--volume", "3", "--out", join(dir, "v.npy"))).code).toBe(0);
    expect(readNpy(join(dir, "v.npy")).shape).toEqual([2, 3, 3]);
    const info4 = await run("info", fourD, "--volume", "3", "--json");
    expect(info4.code).toBe(0);
    expect(JSON.parse(info4.out)).toMatchObject({ slices: 2, rows: 3, cols: 3 });
    const bad = await run("convert", "--in", nii, "--slices", "2:9", "--out", join(dir, "x.npy"));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--slices 2:9 is outside .*3 slices/);
  });
});

describe("eval", () => {
  it("writes a markdown and JSON table of methods x settings over held-out phantoms", async () => {
    const out = join(dir, "eval");
    const r = await run(
      "eval",
      "--phantoms",
      "2",
      "--size",
      "32",
      "--settings",
      "mri-8x,ct-60-views",
      "--mri-methods",
      "zero-filled,tv:iterations=30",
      "--ct-methods",
      "fbp",
      "--out",
      out,
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    expect(j.rows.map((x: { setting: string; method: string }) => `${x.setting}/${x.method}`)).toEqual([
      "mri-8x/zero-filled",
      "mri-8x/tv",
      "ct-60-views/fbp",
    ]);
    expect(j.rows[0].slices).toBe(2);
    // Every row keeps its per-image numbers, named, and its mean is theirs.
    const tv = j.rows[1];
    expect(tv.images.map((i: { image: string }) => i.image)).toEqual([
      "brain phantom seed 1000000",
      "brain phantom seed 1000001",
    ]);
    const psnrs = tv.images.map((i: { psnr: number }) => i.psnr);
    expect(tv.psnr[0]).toBeCloseTo((psnrs[0] + psnrs[1]) / 2, 10);
    expect(psnrs[0]).not.toBe(psnrs[1]);
    expect(readFileSync(join(out, "eval.md"), "utf8")).toMatch(/\| mri-8x \| tv \| 2 \|/);
    expect((await run("eval", "--settings", "mri-3x", "--phantoms", "1", "--out", out)).err).toMatch(
      /unknown setting 'mri-3x'/,
    );
  });

  it("--ct-from-mri also runs MR images in the CT settings as pseudo-CT, with a per-image table", async () => {
    const nii = join(dir, "brain32.nii.gz");
    await writeVolume(nii, makeVolume(1, 32, 32, generatePhantom("brain", 32, 5).data, { modality: "MR" }));
    const out = join(dir, "eval-pct");
    const r = await run(
      "eval",
      ...["--data", nii, "--ct-from-mri", "--size", "32", "--settings", "mri-4x,ct-23-views"],
      ...["--mri-methods", "zero-filled", "--ct-methods", "fbp", "--out", out],
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    const images = (k: number) => j.rows[k].images.map((i: { image: string }) => i.image);
    expect(images(0)).toEqual(["brain32.nii.gz slice 0"]);
    expect(images(1)).toEqual(["brain32.nii.gz slice 0 (pseudo-CT)"]);
    const md = readFileSync(join(out, "eval.md"), "utf8");
    expect(md).toMatch(
      /\| ct-23-views \| fbp PSNR \/ SSIM \|\n.*\n\| brain32.nii.gz slice 0 \(pseudo-CT\) \| [\d.]+ \/ [\d.]+ \|/,
    );
    expect(md).toMatch(
      /\| mri-4x \| zero-filled PSNR \/ SSIM \|\n.*\n\| brain32.nii.gz slice 0 \| [\d.]+ \/ [\d.]+ \|/,
    );
  });
});

describe("reconstruct: parameter ranges, contradicting modalities, measurement arrays, DICOM uncertainty", () => {
  it.each([
    ["score:steps=1e9", /method 'score': steps must be an integer in \[1, 2000\], got '1e9'/],
    ["score:samples=1e6", /samples must be an integer in \[1, 64\], got '1e6'/],
    ["tv:iterations=1e12", /iterations must be an integer in \[1, 100000\], got '1e12'/],
    ["score:cg=1e9", /cg must be an integer in \[0, 100\], got '1e9'/],
    ["score:steps=2.5", /steps must be an integer in \[1, 2000\], got '2.5'/],
    ["score:samples=0", /samples must be an integer in \[1, 64\], got '0'/],
  ])("--method %s gives one line and exit code 2", async (method, message) => {
    const r = await run(
      "reconstruct",
      "--in",
      join(dir, "p.npy"),
      "--modality",
      "mri",
      "--method",
      method,
      "--out",
      join(dir, "bad-range"),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(existsSync(join(dir, "bad-range"))).toBe(false);
  });

  it("a --modality that contradicts the study's own is refused (CT as MRI, MR as CT, measurements too)", async () => {
    const brain = join(dir, "brain.nii.gz");
    expect((await run("phantom", "--kind", "brain", "--size", "32", "--out", brain)).code).toBe(0);
    const ct = join(dir, "ct.nii.gz");
    for (const [input, modality, says] of [
      [ct, "mri", "CT"],
      [brain, "ct", "MR"],
    ]) {
      const r = await run(
        "reconstruct",
        "--in",
        input,
        "--modality",
        modality,
        "--method",
        "tv",
        "--out",
        join(dir, "contra"),
      );
      expect(r.code).toBe(2);
      expect(r.err).toMatch(new RegExp(`--modality ${modality} contradicts the input, which says ${says}`));
      expect(r.err.trim().split("\n")).toHaveLength(1);
    }
    const meas = join(dir, "contra-k.npy");
    expect((await run("simulate", "--in", brain, "--out", meas)).code).toBe(0);
    const r = await run(
      "reconstruct",
      "--measurements",
      meas,
      "--modality",
      "ct",
      "--method",
      "fbp",
      "--out",
      join(dir, "contra"),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--modality ct contradicts .*contra-k\.json, which says MR/);
    expect(existsSync(join(dir, "contra"))).toBe(false);
  });

  it("a complex [4, 64, 64] array without MEAS.json: the run's first line says how it was read", async () => {
    const k = readNpy(join(dir, "k.npy"));
    const four = new Float32Array(4 * k.data.length);
    for (let s = 0; s < 4; s++) four.set(k.data as Float32Array, s * k.data.length);
    await writeNpy(join(dir, "four.npy"), [4, 64, 64], four, "complex64");
    const r = await run(
      "reconstruct",
      "--measurements",
      join(dir, "four.npy"),
      "--modality",
      "mri",
      "--method",
      "zero-filled",
      "--out",
      join(dir, "four"),
      "--json",
    );
    expect(r.code).toBe(0);
    expect(r.err.split("\n")[0]).toMatch(
      /^scorerecon: .*four\.npy has no .*four\.json: its complex 4x64x64 array is read as 4 slice\(s\) of single-coil 64x64 Cartesian k-space \(slices first; multi-coil/,
    );
    expect(JSON.parse(r.out).results[0].method).toBe("zero-filled");
  });

  it("--method score --format dicom writes the uncertainty map as a DICOM series too, and metrics.json", async () => {
    const out = join(dir, "score-dicom");
    const r = await run(
      "reconstruct",
      "--in",
      join(dir, "brain.nii.gz"),
      "--method",
      "score:steps=2:samples=2",
      "--format",
      "dicom",
      "--out",
      out,
      "--json",
    );
    expect(r.code, r.err).toBe(0);
    const std = await readVolume(join(out, "score-std"));
    expect([std.slices, std.rows, std.cols]).toEqual([1, 32, 32]);
    expect(std.data.some((v) => v > 0)).toBe(true);
    expect((await readVolume(join(out, "score"))).rows).toBe(32);
    expect(JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")).results[0].method).toBe("score");
  }, 180_000);
});

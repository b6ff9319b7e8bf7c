/**
 * Derived DICOM series: a round trip through the reader and the writer, validated by dcmtk's
 * dcmdump and dicom3tools' dciodvfy (Debian packages dcmtk and dicom3tools, installed by .ci/run).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readDicomSeries } from "../../src/io/dicom.js";
import { writeDicomSeries } from "../../src/io/dicom-write.js";
import { affineOf, makeVolume } from "../../src/image/volume.js";
import { commandPath, runCli } from "../helpers.js";

const fx = (p: string) => new URL(`../fixtures/dicom/${p}`, import.meta.url).pathname;

const tools = ["dcmdump", "dciodvfy"].filter((t) => !commandPath(t));
if (tools.length && process.env.CI)
  throw new Error(`${tools.join(" and ")} missing: .ci/run installs the dcmtk and dicom3tools packages`);
if (tools.length)
  console.warn(
    `not validating written DICOM files: ${tools.join(" and ")} not installed (apt-get install dcmtk dicom3tools); the round-trip checks still run`,
  );

/** Checks a written file with dcmdump and dciodvfy (outside CI, only where both are installed). */
function validate(file: string): void {
  if (tools.length) return;
  const dump = spawnSync("dcmdump", [file], { encoding: "utf8" });
  expect(dump.status).toBe(0);
  expect(dump.stderr).not.toMatch(/^E:/m);
  const iod = spawnSync("dciodvfy", [file], { encoding: "utf8" });
  expect(iod.error).toBeUndefined();
  expect(`${iod.stdout}${iod.stderr}`).not.toMatch(/^Error/m);
}

describe("derived DICOM series", () => {
  it("keeps patient, study, frame of reference, geometry and pixel values, and passes dcmdump and dciodvfy", async () => {
    const { volume: src } = await readDicomSeries(fx("ct-square"));
    const dir = mkdtempSync(join(tmpdir(), "scorerecon-dcmw-"));
    const files = await writeDicomSeries(dir, src, {
      description: "scorerecon test",
      derivation: "round trip",
    });
    expect(files).toHaveLength(3);
    files.forEach(validate);
    const { volume: back } = await readDicomSeries(dir);
    expect(back.dicom!.patientStudy).toEqual(src.dicom!.patientStudy);
    expect(back.dicom!.frameOfReferenceUid).toBe(src.dicom!.frameOfReferenceUid);
    expect(back.dicom!.slices.map((s) => s.position)).toEqual(src.dicom!.slices.map((s) => s.position));
    expect(back.affine).toEqual(src.affine);
    expect(back.dicom!.slices[0].sopInstanceUid).not.toBe(src.dicom!.slices[0].sopInstanceUid);
    const range = Math.max(...src.data) - Math.min(...src.data);
    back.data.forEach((v, i) => expect(Math.abs(v - src.data[i])).toBeLessThanOrEqual(range / 65000));
    expect(back).toMatchObject({ modality: "CT", units: "HU" });
  });

  it("anonymises on request and writes a valid secondary capture without a DICOM source", async () => {
    const dir = mkdtempSync(join(tmpdir(), "scorerecon-dcmw-"));
    const v = makeVolume(
      2,
      16,
      12,
      Float32Array.from({ length: 384 }, (_, i) => (i % 50) / 50),
    );
    const files = await writeDicomSeries(dir, v, {
      description: "scorerecon zero-filled",
      derivation: "test",
      anonymise: true,
    });
    files.forEach(validate);
    const back = (await readDicomSeries(dir)).volume;
    expect([back.slices, back.rows, back.cols]).toEqual([2, 16, 12]);
    expect(back.dicom!.patientStudy.PatientID).toBe("ANONYMOUS");
    const { volume: src } = await readDicomSeries(fx("ct-square"));
    const anon = await writeDicomSeries(mkdtempSync(join(tmpdir(), "scorerecon-dcmw-")), src, {
      description: "a",
      derivation: "b",
      anonymise: true,
    });
    const read = (await readDicomSeries(join(anon[0], ".."))).volume.dicom!.patientStudy;
    expect(read).toMatchObject({ PatientName: "", PatientID: "ANONYMOUS", PatientBirthDate: "" });
  });

  it("a series without a DICOM source carries the volume's geometry: read back, every voxel lies where it was", async () => {
    // World position (RAS+ mm) of voxel (col, row, slice) under a NIfTI-style affine.
    const world = (a: readonly number[], c: number, r: number, k: number) =>
      [0, 4, 8].map((o) => a[o] * c + a[o + 1] * r + a[o + 2] * k + a[o + 3]);
    const affines = [
      undefined, // a phantom: the default affine, row 0 at the top
      [-0.9, 0, 0, 10, 0, 0, 1.1, -5, 0, -1.2, 0, 20, 0, 0, 0, 1], // RPS-like (coronal), left-handed
      [0.8, 0, 0, -40, 0, 0.8, 0, -60, 0, 0, 2.5, 7, 0, 0, 0, 1], // RAS, right-handed
      [0.6, -0.8, 0, 3, 0.8, 0.6, 0, 4, 0, 0, 1.5, 5, 0, 0, 0, 1], // oblique about z
    ];
    for (const affine of affines) {
      const v = makeVolume(
        3,
        16,
        12,
        Float32Array.from({ length: 3 * 16 * 12 }, (_, i) => i),
        { spacing: [1.2, 0.9, 1.1], ...(affine ? { affine } : {}) },
      );
      const dir = mkdtempSync(join(tmpdir(), "scorerecon-dcmw-"));
      (await writeDicomSeries(dir, v, { description: "geometry", derivation: "test" })).forEach(validate);
      const back = (await readDicomSeries(dir)).volume;
      const a0 = affineOf(v),
        a1 = back.affine!;
      for (let k1 = 0; k1 < back.slices; k1++) {
        // The source slice at the read-back slice's position (readers sort slices along the normal).
        const k0 = [0, 1, 2].find((k) =>
          world(a0, 0, 0, k).every((x, i) => Math.abs(x - world(a1, 0, 0, k1)[i]) < 1e-3),
        );
        expect(k0, `slice ${k1} of the read-back series lies on a source slice`).toBeDefined();
        for (const [c, r] of [
          [11, 0],
          [0, 15],
          [11, 15],
        ])
          world(a1, c, r, k1).forEach((x, i) => expect(x).toBeCloseTo(world(a0, c, r, k0!)[i], 3));
        const n = 16 * 12;
        for (let i = 0; i < n; i++)
          expect(Math.abs(back.data[k1 * n + i] - v.data[k0! * n + i])).toBeLessThan(0.01);
      }
    }
  });

  it("reconstruct --format dicom writes a derived series that overlays its source", async () => {
    const out = mkdtempSync(join(tmpdir(), "scorerecon-dcmw-"));
    const r = await runCli(
      "reconstruct",
      "--in",
      fx("ct-square"),
      "--modality",
      "ct",
      "--views",
      "60",
      "--method",
      "fbp",
      "--format",
      "dicom",
      "--out",
      out,
    );
    expect(r.code).toBe(0);
    const files = readdirSync(join(out, "fbp"));
    expect(files).toHaveLength(3);
    const { volume } = await readDicomSeries(join(out, "fbp"));
    const { volume: src } = await readDicomSeries(fx("ct-square"));
    expect(volume.dicom!.frameOfReferenceUid).toBe(src.dicom!.frameOfReferenceUid);
    expect(volume.affine).toEqual(src.affine);
    validate(join(out, "fbp", files[0]));
  });
});

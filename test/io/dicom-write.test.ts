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
import { makeVolume } from "../../src/image/volume.js";
import { runCli } from "../helpers.js";

const fx = (p: string) => new URL(`../fixtures/dicom/${p}`, import.meta.url).pathname;

function validate(file: string): void {
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

/**
 * DICOM reading on committed fixtures made with GDCM and DCMTK (test/fixtures/dicom/README.md):
 * a 3-slice CT series whose file names do not follow the slice order, a two-series folder,
 * other transfer syntaxes of one slice, and broken files.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listDicomSeries, readDicomSeries } from "../../src/io/dicom.js";
import { readVolume } from "../../src/io/index.js";

const fx = (p: string) => new URL(`../fixtures/dicom/${p}`, import.meta.url).pathname;
/** ct0.dcm's stored pixels (int16 little endian, 24 rows x 20 columns). */
const raw = (() => {
  const b = readFileSync(fx("ct0-pixels.raw"));
  return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
})();

describe("DICOM series", () => {
  it("sorts slices by position along the normal, applies the rescale and keeps geometry", () => {
    const { volume: v, skipped } = readDicomSeries(fx("series"));
    expect(skipped).toEqual([]);
    expect([v.slices, v.rows, v.cols]).toEqual([3, 24, 20]);
    expect(v).toMatchObject({ modality: "CT", units: "HU" });
    expect(v.spacing.map((x) => +x.toFixed(3))).toEqual([0.7, 0.8, 2.5]);
    // ct0.dcm sits at z = 5, the last slice; HU = stored - 1024.
    const last = v.data.subarray(2 * 480, 3 * 480);
    expect(Array.from(last)).toEqual(Array.from(raw, (x) => x - 1024));
    // LPS (-10, -12, 0) of the first voxel becomes RAS (10, 12, 0).
    expect([v.affine![3], v.affine![7], v.affine![11]]).toEqual([10, 12, 0]);
  });

  it.each(["implicit", "big-endian", "deflated"])(
    "decodes %s transfer syntax like explicit little endian",
    (name) => {
      const ref = readDicomSeries(fx("series/ct1.dcm")).volume.data;
      expect(Array.from(readDicomSeries(fx(`${name}.dcm`)).volume.data)).toEqual(Array.from(ref));
    },
  );

  it("names a compressed syntax it cannot decode yet", () => {
    expect(() => readDicomSeries(fx("rle.dcm"))).toThrow(
      /rle\.dcm uses RLE lossless \(1\.2\.840\.10008\.1\.2\.5\)/,
    );
  });

  it("lists several series and reads the one asked for; MONOCHROME1 is inverted", () => {
    expect(
      listDicomSeries(fx("two-series"))
        .series.map((s) => s.modality)
        .sort(),
    ).toEqual(["CT", "MR"]);
    expect(() => readDicomSeries(fx("two-series"))).toThrow(/holds 2 series; choose one with --series UID/);
    const mr = readDicomSeries(fx("two-series"), { seriesUid: "1.2.826.0.1.3680043.9.7777.2.1" }).volume;
    expect(mr.modality).toBe("MR");
    // Stored values 0..479 (unsigned 16), shown MONOCHROME1: inverted to 65535 - v.
    expect(mr.data[0]).toBe(65535);
    expect(mr.data[479]).toBe(65535 - 479);
  });

  it("skips broken files in a folder by name, and errors on a broken single file or an empty folder", async () => {
    const { volume, skipped } = readDicomSeries(fx("bad"));
    expect(volume.slices).toBe(1);
    expect(skipped.map((s) => s.file.split("/").pop()).sort()).toEqual(["notes.dcm", "truncated.dcm"]);
    expect(() => readDicomSeries(fx("bad/notes.dcm"))).toThrow(/notes\.dcm is not a readable DICOM file/);
    expect(() => readDicomSeries(fx("bad/truncated.dcm"))).toThrow(/truncated\.dcm has no Pixel Data/);
    const empty = mkdtempSync(join(tmpdir(), "scorerecon-dicom-"));
    expect(() => readDicomSeries(empty)).toThrow(/holds no readable DICOM image/);
    expect((await readVolume(fx("series"))).slices).toBe(3);
  });
});

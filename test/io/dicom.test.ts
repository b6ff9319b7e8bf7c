/**
 * DICOM reading on committed fixtures made with GDCM and DCMTK (test/fixtures/dicom/README.md):
 * a 3-slice CT series whose file names do not follow the slice order, a two-series folder, one
 * slice in every supported transfer syntax, and broken files.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listDicomSeries, readDicomSeries } from "../../src/io/dicom.js";
import { isDicomPath, readVolume } from "../../src/io/index.js";

const fx = (p: string) => new URL(`../fixtures/dicom/${p}`, import.meta.url).pathname;
const rawFile = (name: string) => readFileSync(fx(name));
/** ct0.dcm's stored pixels (int16 little endian, 24 rows x 20 columns). */
const ct0 = (() => {
  const b = rawFile("ct0-pixels.raw");
  return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
})();
const read = async (p: string, uid?: string) => (await readDicomSeries(fx(p), { seriesUid: uid })).volume;

describe("DICOM series", () => {
  it("sorts slices by position along the normal, applies the rescale and keeps geometry", async () => {
    const { volume: v, skipped } = await readDicomSeries(fx("series"));
    expect(skipped).toEqual([]);
    expect([v.slices, v.rows, v.cols]).toEqual([3, 24, 20]);
    expect(v).toMatchObject({ modality: "CT", units: "HU" });
    expect(v.spacing.map((x) => +x.toFixed(3))).toEqual([0.7, 0.8, 2.5]);
    // ct0.dcm sits at z = 5, the last slice; HU = stored - 1024.
    expect(Array.from(v.data.subarray(2 * 480, 3 * 480))).toEqual(Array.from(ct0, (x) => x - 1024));
    // LPS (-10, -12, 0) of the first voxel becomes RAS (10, 12, 0).
    expect([v.affine![3], v.affine![7], v.affine![11]]).toEqual([10, 12, 0]);
  });

  it.each([
    "implicit",
    "big-endian",
    "deflated",
    "rle",
    "jpeg-lossless",
    "jpeg-ls",
    "j2k",
    "bare-implicit",
    "bare-explicit",
    "no-preamble",
  ])("decodes %s exactly like the uncompressed original", async (name) => {
    const ref = await read("series/ct1.dcm");
    expect(Array.from((await read(`${name}.dcm`)).data)).toEqual(Array.from(ref.data));
  });

  it("decodes JPEG baseline (lossy, 8-bit) within the codec's tolerance", async () => {
    const original = Array.from(rawFile("uint8-pixels.raw"));
    expect(Array.from((await read("uint8.dcm")).data)).toEqual(original);
    const lossy = (await read("jpeg-baseline.dcm")).data;
    const mae = lossy.reduce((s, v, i) => s + Math.abs(v - original[i]), 0) / lossy.length;
    expect(mae).toBeLessThan(0.02 * 255);
  });

  it("decodes 8-bit JPEG extended like DCMTK's own decompression of it", async () => {
    const ours = (await read("jpeg-extended.dcm")).data;
    const dcmtk = (await read("jpeg-extended-dcmtk-decoded.dcm")).data;
    ours.forEach((v, i) => expect(Math.abs(v - dcmtk[i])).toBeLessThanOrEqual(1));
  });

  it("decodes 12-bit JPEG extended (1.2.840.10008.1.2.4.51) exactly like DCMTK's dcmdjpeg", async () => {
    const ours = await read("jpeg-extended-12bit.dcm");
    const dcmtk = (await read("jpeg-extended-12bit-dcmtk-decoded.dcm")).data;
    const original = (await read("twelve-bit.dcm")).data;
    expect([ours.rows, ours.cols]).toEqual([32, 32]);
    expect(Array.from(ours.data)).toEqual(Array.from(dcmtk));
    // Lossy, but the 12-bit levels are kept: no level shift, small errors only.
    const mean = ours.data.reduce((s, v, i) => s + (v - original[i]), 0) / ours.data.length;
    expect(Math.abs(mean)).toBeLessThan(1);
    expect(Math.max(...original)).toBeGreaterThan(2048);
  });

  it("refuses colour, mismatched slice sizes and truncated pixel data with one-line errors", async () => {
    await expect(readDicomSeries(fx("colour.dcm"))).rejects.toThrow(
      /colour\.dcm is a colour image \(RGB\); colour images are not supported/,
    );
    await expect(readDicomSeries(fx("mismatched"))).rejects.toThrow(
      /is 24x24 but its series is 24x20|is 24x20 but its series is 24x24/,
    );
    await expect(readDicomSeries(fx("truncated-pixels.dcm"))).rejects.toThrow(
      /truncated-pixels\.dcm (is truncated|is not a readable DICOM file)/,
    );
  });

  it("reads the frames of a multi-frame instance as slices", async () => {
    const v = await read("multiframe.dcm");
    expect([v.slices, v.rows, v.cols]).toEqual([3, 24, 20]);
    for (const f of [0, 1, 2]) for (const i of [0, 7, 479]) expect(v.data[f * 480 + i]).toBe(i + 1000 * f);
  });

  it("lists several series and reads the one asked for; MONOCHROME1 is inverted", async () => {
    expect(
      listDicomSeries(fx("two-series"))
        .series.map((s) => s.modality)
        .sort(),
    ).toEqual(["CT", "MR"]);
    await expect(readDicomSeries(fx("two-series"))).rejects.toThrow(
      /holds 2 series; choose one with --series UID/,
    );
    const mr = await read("two-series", "1.2.826.0.1.3680043.9.7777.2.1");
    expect(mr.modality).toBe("MR");
    // Stored values 0..479 (unsigned 16), shown MONOCHROME1: inverted to 65535 - v.
    expect(mr.data[0]).toBe(65535);
    expect(mr.data[479]).toBe(65535 - 479);
  });

  it("skips broken files in a folder by name, and errors on a broken single file or an empty folder", async () => {
    const { volume, skipped } = await readDicomSeries(fx("bad"));
    expect(volume.slices).toBe(1);
    expect(skipped.map((s) => s.file.split("/").pop()).sort()).toEqual(["notes.dcm", "truncated.dcm"]);
    await expect(readDicomSeries(fx("bad/notes.dcm"))).rejects.toThrow(
      /notes\.dcm is not a readable DICOM file/,
    );
    await expect(readDicomSeries(fx("bad/truncated.dcm"))).rejects.toThrow(
      /truncated\.dcm has no Pixel Data/,
    );
    const empty = mkdtempSync(join(tmpdir(), "scorerecon-dicom-"));
    await expect(readDicomSeries(empty)).rejects.toThrow(/holds no readable DICOM image/);
    expect((await readVolume(fx("series"))).slices).toBe(3);
  });

  it("knows a DICOM file without a .dcm name by its content, bare data sets included", () => {
    const dir = mkdtempSync(join(tmpdir(), "scorerecon-dicom-"));
    for (const name of ["series/ct1.dcm", "bare-implicit.dcm", "bare-explicit.dcm", "no-preamble.dcm"]) {
      const copy = join(dir, name.replace(/\W/g, "-").replace(/-dcm$/, ""));
      copyFileSync(fx(name), copy);
      expect(isDicomPath(copy)).toBe(true);
    }
    // Text, and bytes that start like no data set (group 0x0010 first), are not DICOM.
    writeFileSync(join(dir, "notes"), "0008 this is text");
    writeFileSync(
      join(dir, "other"),
      Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e, 0x02, 0x00, 0x41, 0x20]),
    );
    expect(isDicomPath(join(dir, "notes"))).toBe(false);
    expect(isDicomPath(join(dir, "other"))).toBe(false);
  });
});

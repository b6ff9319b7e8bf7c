import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeVolume } from "../../src/image/volume.js";
import { writeFileAtomic } from "../../src/io/atomic.js";
import { readNpyArray, readVolume, writeNpyArray, writeVolume } from "../../src/io/index.js";
import { readNpy } from "../../src/io/npy.js";
import { encodePng, readPng, writePng } from "../../src/io/png.js";
import { UserError } from "../../src/errors.js";

const fixture = (name: string) => new URL(`../fixtures/io/${name}`, import.meta.url).pathname;
const tmp = () => mkdtempSync(join(tmpdir(), "scorerecon-io-"));
// a = arange(12).reshape(3, 4) / 4 - 1, as make-fixtures.py writes it.
const a = Array.from({ length: 12 }, (_, i) => i / 4 - 1);

describe(".npy", () => {
  it("reads NumPy's files: float32, big-endian Fortran float64, int16, bool, complex64, uint16 3-D", () => {
    expect(readNpy(fixture("c-f4.npy"))).toMatchObject({ shape: [3, 4], complex: false });
    expect(Array.from(readNpy(fixture("c-f4.npy")).data)).toEqual(a);
    const f = readNpy(fixture("fortran-f8-be.npy"));
    expect(f.dtype).toBe(">f8");
    expect(Array.from(f.data)).toEqual(a);
    expect(Array.from(readNpy(fixture("i2.npy")).data)).toEqual(a.map((v) => Math.trunc(v * 100)));
    expect(Array.from(readNpy(fixture("bool.npy")).data)).toEqual(a.map((v) => (v > 0 ? 1 : 0)));
    const c = readNpy(fixture("c8.npy"));
    expect(c.complex).toBe(true);
    // a + 1j * a[::-1]: element (r, c) has imaginary part a[2 - r, c].
    for (let i = 0; i < 12; i++) {
      expect(c.data[2 * i]).toBeCloseTo(a[i], 6);
      expect(c.data[2 * i + 1]).toBeCloseTo(a[(2 - Math.floor(i / 4)) * 4 + (i % 4)], 6);
    }
    expect(readNpy(fixture("u2-3d.npy")).shape).toEqual([2, 3, 4]);
  });

  it("round-trips float32, complex64 and uint8", async () => {
    const d = tmp();
    const data = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i));
    await writeNpyArray(join(d, "f.npy"), { shape: [4, 6], data });
    await writeNpyArray(join(d, "c.npy"), { shape: [3, 4], data, complex: true });
    await writeNpyArray(join(d, "m.npy"), {
      shape: [24],
      data: data.map((v) => (v > 0 ? 1 : 0)),
      dtype: "uint8",
    });
    expect(await readNpyArray(join(d, "f.npy"))).toMatchObject({
      shape: [4, 6],
      data,
      complex: false,
      dtype: "<f4",
    });
    expect(await readNpyArray(join(d, "c.npy"))).toMatchObject({
      shape: [3, 4],
      data,
      complex: true,
      dtype: "<c8",
    });
    expect((await readNpyArray(join(d, "m.npy"))).dtype).toBe("|u1");
  });

  it("names the file and the problem for a truncated or foreign file", async () => {
    const d = tmp();
    const bytes = readFileSync(fixture("c-f4.npy"));
    writeFileSync(join(d, "cut.npy"), bytes.subarray(0, bytes.length - 8));
    expect(() => readNpy(join(d, "cut.npy"))).toThrow(/cut\.npy is truncated/);
    writeFileSync(join(d, "text.npy"), "not numpy");
    expect(() => readNpy(join(d, "text.npy"))).toThrow(/text\.npy is not a NumPy \.npy file/);
  });
});

describe("NIfTI", () => {
  it("reads NiBabel's int16 with scl_slope/inter, keeping the sform", async () => {
    const v = await readVolume(fixture("int16-scaled.nii.gz"));
    expect([v.slices, v.rows, v.cols]).toEqual([3, 4, 5]);
    // vol[i, j, k] = (i*12 + j*3 + k) - 20 stored, times 0.5 minus 10.
    const at = (i: number, j: number, k: number) => v.data[(k * 4 + j) * 5 + i];
    expect(at(0, 0, 0)).toBe(-20 * 0.5 - 10);
    expect(at(4, 3, 2)).toBe((4 * 12 + 3 * 3 + 2 - 20) * 0.5 - 10);
    expect(v.spacing.map((s) => +s.toFixed(4))).toEqual([1.1, 0.9, 2.5]);
    expect(v.affine!.map((x) => +x.toFixed(4))).toEqual([
      -0.9, 0, 0, 30, 0, 1.1, 0, -40, 0, 0, 2.5, 12, 0, 0, 0, 1,
    ]);
  });

  it("reads uint8 2-D, big-endian float64 and NIfTI-2", async () => {
    const u = await readVolume(fixture("uint8-2d.nii"));
    expect([u.slices, u.rows, u.cols]).toEqual([1, 4, 5]);
    expect(u.data[4 * 5 - 1]).toBe(19);
    const be = await readVolume(fixture("float64-be.nii"));
    const n2 = await readVolume(fixture("float32-nifti2.nii"));
    const i16 = await readVolume(fixture("int16-scaled.nii.gz"));
    expect(Array.from(be.data)).toEqual(Array.from(i16.data, (v) => (v + 10) / 0.5));
    expect(Array.from(n2.data)).toEqual(Array.from(be.data));
  });

  it("rejects a 4-D image naming the dimension", async () => {
    await expect(readVolume(fixture("four-d.nii.gz"))).rejects.toThrow(/4-D \(dim\[4\] = 4 volumes\)/);
  });

  it.each(["v.nii", "v.nii.gz"])("round-trips data, modality, units and affine through %s", async (name) => {
    const d = tmp();
    const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 1.5 - 7);
    const withAffine = makeVolume(2, 3, 4, data, {
      spacing: [0.7, 0.8, 3],
      modality: "CT",
      units: "HU",
      affine: [0, 0, 3, -5, -0.8, 0, 0, 2, 0, -0.7, 0, 9, 0, 0, 0, 1],
    });
    await writeVolume(join(d, name), withAffine);
    const back = await readVolume(join(d, name));
    expect(back).toMatchObject({ slices: 2, rows: 3, cols: 4, modality: "CT", units: "HU" });
    expect(Array.from(back.data)).toEqual(Array.from(data));
    expect(back.affine!.map((x) => +x.toFixed(5))).toEqual(withAffine.affine!.map((x) => +x.toFixed(5)));
    expect(back.spacing.map((x) => +x.toFixed(5))).toEqual([0.7, 0.8, 3]);
    const plain = makeVolume(1, 3, 4, data.subarray(0, 12), { spacing: [2, 1, 1] });
    await writeVolume(join(d, `plain-${name}`), plain);
    expect((await readVolume(join(d, `plain-${name}`))).affine).toEqual([
      1, 0, 0, 0, 0, -2, 0, 4, 0, 0, 1, 0, 0, 0, 0, 1,
    ]);
  });
});

describe("PNG and files", () => {
  it("round-trips greyscale and rejects colour", async () => {
    const d = tmp();
    const img = { rows: 3, cols: 2, data: Float32Array.from([0, 51, 102, 153, 204, 255]) };
    await writePng(join(d, "g.png"), img, { min: 0, max: 255 });
    expect(Array.from(readPng(join(d, "g.png")).data)).toEqual(Array.from(img.data));
    const { PNG } = await import("pngjs");
    const rgb = new PNG({ width: 1, height: 1 });
    rgb.data = Buffer.from([255, 0, 0, 255]);
    writeFileSync(join(d, "c.png"), PNG.sync.write(rgb));
    expect(() => readPng(join(d, "c.png"))).toThrow(/colour images are not supported/);
  });

  it("errors name the path: missing file, folder, unknown type, multi-slice PNG", async () => {
    const d = tmp();
    await expect(readVolume(join(d, "none.nii"))).rejects.toThrow(/none\.nii: no such file/);
    mkdirSync(join(d, "dir.nii"));
    // A folder is read as a DICOM series.
    await expect(readVolume(join(d, "dir.nii"))).rejects.toThrow(/dir\.nii holds no readable DICOM image/);
    writeFileSync(join(d, "a.txt"), "x");
    await expect(readVolume(join(d, "a.txt"))).rejects.toThrow(/a\.txt: unknown file type/);
    await expect(writeVolume(join(d, "m.png"), makeVolume(2, 2, 2))).rejects.toThrow(/a PNG holds one slice/);
  });

  it("writes atomically: no temp file left, and no target when the write fails", async () => {
    const d = tmp();
    await writeFileAtomic(join(d, "ok.bin"), new Uint8Array([1, 2, 3]));
    // The rename onto a folder fails after the data was written: the temp file must go.
    mkdirSync(join(d, "target.bin"));
    await expect(writeFileAtomic(join(d, "target.bin"), new Uint8Array(1000))).rejects.toThrow();
    expect(readdirSync(d).sort()).toEqual(["ok.bin", "target.bin"]);
    expect(readFileSync(join(d, "ok.bin"))).toEqual(Buffer.from([1, 2, 3]));
  });
});

describe("BART .cfl/.hdr", () => {
  it("reads column-major complex64 with BART's readout/phase-encode order and round-trips", async () => {
    const d = tmp();
    // BART dims [3, 2]: dimension 0 (readout = our rows) fastest. Value at (r, c) = r + 10 c + i (r - c).
    const raw = new Float32Array(12);
    for (let c = 0; c < 2; c++)
      for (let r = 0; r < 3; r++) {
        raw[2 * (r + 3 * c)] = r + 10 * c;
        raw[2 * (r + 3 * c) + 1] = r - c;
      }
    writeFileSync(join(d, "k.hdr"), "# Dimensions\n3 2 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n");
    writeFileSync(join(d, "k.cfl"), Buffer.from(raw.buffer));
    const a = await readNpyArray(join(d, "k.cfl"));
    expect(a.shape).toEqual([3, 2]);
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 2; c++) {
        expect(a.data[2 * (r * 2 + c)]).toBe(r + 10 * c);
        expect(a.data[2 * (r * 2 + c) + 1]).toBe(r - c);
      }
    await writeNpyArray(join(d, "copy.cfl"), { shape: a.shape, data: a.data, complex: true });
    expect(readFileSync(join(d, "copy.cfl"))).toEqual(readFileSync(join(d, "k.cfl")));
    const v = await readVolume(join(d, "k.cfl"));
    expect(v.data[1]).toBeCloseTo(Math.hypot(10, -1), 5);
    writeFileSync(join(d, "bad.hdr"), "# Dimensions\n4 4\n");
    writeFileSync(join(d, "bad.cfl"), Buffer.alloc(16));
    await expect(readNpyArray(join(d, "bad.cfl"))).rejects.toThrow(/bad\.cfl is truncated/);
  });
});

describe("NIfTI datatypes", () => {
  // NiBabel's files span each type's range (int32 within float32's exact integers); values
  // come back exactly as float32 holds them, and a write/read round trip keeps them and the affine.
  const ranges: Record<string, [number, number]> = {
    uint8: [0, 255],
    int8: [-128, 127],
    int16: [-32768, 32767],
    uint16: [0, 65535],
    int32: [-(2 ** 24), 2 ** 24],
    float32: [-3e38, 3e38],
    float64: [-1e30, 1e30],
  };
  it.each(Object.keys(ranges))("%s: range kept on read and through a round trip", async (name) => {
    const v = await readVolume(fixture(`dtype-${name}.nii.gz`));
    const [lo, hi] = ranges[name];
    expect(Math.min(...v.data)).toBe(Math.fround(lo));
    expect(Math.max(...v.data)).toBe(Math.fround(hi));
    const d = tmp();
    await writeVolume(join(d, "back.nii"), v);
    const back = await readVolume(join(d, "back.nii"));
    expect(Array.from(back.data)).toEqual(Array.from(v.data));
    expect(back.affine).toEqual(v.affine);
  });
});

describe(".npy: versions, float16 and errors", () => {
  it("reads format versions 2.0 and 3.0 and float16", () => {
    for (const name of ["v2-f4.npy", "v3-f4.npy", "f2.npy"]) {
      const arr = readNpy(fixture(name));
      expect(arr.shape).toEqual([3, 4]);
      expect(Array.from(arr.data)).toEqual(a);
    }
    expect(readNpy(fixture("f2.npy")).dtype).toBe("<f2");
  });

  it("writes a header NEP 1 accepts: data at a multiple of 64 bytes, header ending in a newline", async () => {
    const d = tmp();
    for (const shape of [
      [5],
      [3, 4],
      [2, 3, 4],
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ]) {
      const n = shape.reduce((x, y) => x * y, 1);
      await writeNpyArray(join(d, "s.npy"), { shape, data: new Float32Array(n) });
      const bytes = readFileSync(join(d, "s.npy"));
      const headerLen = bytes.readUInt16LE(8);
      expect((10 + headerLen) % 64).toBe(0);
      expect(bytes[10 + headerLen - 1]).toBe(0x0a);
      expect(bytes.length).toBe(10 + headerLen + 4 * n);
      expect(readNpy(join(d, "s.npy")).shape).toEqual(shape);
    }
  });

  it("names the file and the dtype or the damage", () => {
    const d = tmp();
    const npy = (header: string, major = 1, data = Buffer.alloc(0)) => {
      const h = Buffer.from(header.padEnd(117, " ") + "\n", "latin1");
      const len = Buffer.alloc(major === 1 ? 2 : 4);
      if (major === 1) len.writeUInt16LE(h.length);
      else len.writeUInt32LE(h.length);
      return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]), len, h, data]);
    };
    const file = (name: string, bytes: Uint8Array) => (writeFileSync(join(d, name), bytes), join(d, name));
    expect(() =>
      readNpy(file("u.npy", npy("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }"))),
    ).toThrow(/u\.npy has dtype '<U3', which is not supported/);
    expect(() =>
      readNpy(
        file(
          "rec.npy",
          npy("{'descr': [('re', '<f4'), ('im', '<f4')], 'fortran_order': False, 'shape': (2,), }"),
        ),
      ),
    ).toThrow(/rec\.npy has a structured dtype/);
    expect(() => readNpy(file("v9.npy", npy("{}", 9)))).toThrow(/v9\.npy is \.npy format version 9\.0/);
    // Magic and version but not even the header length.
    expect(() => readNpy(file("short.npy", npy("", 2).subarray(0, 10)))).toThrow(
      /short\.npy is truncated \(header\)/,
    );
    expect(() => readNpy(join(d, "missing.npy"))).toThrow(/missing\.npy: no such file/);
    expect(() => readNpy(d)).toThrow(/is a folder/);
  });
});

describe("NIfTI: transforms and odd headers", () => {
  // make-fixtures.py: rotation by 0.4 rad about z, times diag(0.9, 1.1, -2.5), origin (30, -40, 12).
  const [c, s] = [Math.cos(0.4), Math.sin(0.4)];
  const oblique = [0.9 * c, -1.1 * s, 0, 30, 0.9 * s, 1.1 * c, 0, -40, 0, 0, -2.5, 12, 0, 0, 0, 1];

  it.each(["qform-only.nii.gz", "qform-only-nifti2.nii.gz"])(
    "%s: the qform (quaternion, qfac -1) as NiBabel reads it",
    async (name) => {
      const v = await readVolume(fixture(name));
      v.affine!.forEach((x, i) => expect(x).toBeCloseTo(oblique[i], 6));
      expect(v.spacing.map((x) => +x.toFixed(5))).toEqual([1.1, 0.9, 2.5]);
      // The qform survives a write (as sform and qform) and a read.
      const d = tmp();
      await writeVolume(join(d, "back.nii"), v);
      const back = await readVolume(join(d, "back.nii"));
      expect(back.affine).toEqual(v.affine!.map(Math.fround));
    },
  );

  it("no transform codes: NIfTI method 1 (pixdim only), so an output overlays its input", async () => {
    const v = await readVolume(fixture("no-transform.nii.gz"));
    expect(v.affine!.map((x) => +x.toFixed(5))).toEqual([
      0.9, 0, 0, 0, 0, 1.1, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1,
    ]);
  });

  it("ignores dimensions past dim[0] (a 2-D image with dim[3] = 0)", async () => {
    const v = await readVolume(fixture("dim3-zero.nii"));
    expect([v.slices, v.rows, v.cols]).toEqual([1, 4, 5]);
    // nibabel's array is [i, j] = [5, 4] from arange(20).reshape(5, 4): value at (i, j) = 4 i + j.
    expect(v.data[2 * 5 + 3]).toBe(4 * 3 + 2);
  });

  it("one-line errors for a foreign, empty or truncated file", async () => {
    const d = tmp();
    writeFileSync(join(d, "text.nii"), "this is not an image");
    await expect(readVolume(join(d, "text.nii"))).rejects.toThrow(/text\.nii is not a NIfTI file/);
    writeFileSync(join(d, "text.nii.gz"), "this is not an image");
    await expect(readVolume(join(d, "text.nii.gz"))).rejects.toThrow(/text\.nii\.gz is not a NIfTI file/);
    const whole = readFileSync(fixture("uint8-2d.nii"));
    writeFileSync(join(d, "cut.nii"), whole.subarray(0, whole.length - 5));
    await expect(readVolume(join(d, "cut.nii"))).rejects.toThrow(/cut\.nii is truncated: 5x4x1 uint8 voxels/);
    const gz = readFileSync(fixture("int16-scaled.nii.gz"));
    writeFileSync(join(d, "cut.nii.gz"), gz.subarray(0, gz.length - 30));
    await expect(readVolume(join(d, "cut.nii.gz"))).rejects.toThrow(
      /cut\.nii\.gz is not a readable NIfTI file/,
    );
    // NIfTI-1 dims are int16: a longer axis is refused, not wrapped.
    const wide = makeVolume(1, 2, 40000, new Float32Array(80000));
    await expect(writeVolume(join(d, "wide.nii"), wide)).rejects.toThrow(
      /at most 32767 voxels along an axis/,
    );
    expect(existsSync(join(d, "wide.nii"))).toBe(false);
    // An infinite voxel size (pixdim[2], bytes 84-87) is refused; 0 stays "unknown" (1 mm).
    for (const [value, ok] of [
      [Infinity, false],
      [NaN, false],
      [0, true],
    ] as const) {
      const b = Buffer.from(whole);
      b.writeFloatLE(value, 84);
      writeFileSync(join(d, "pix.nii"), b);
      if (ok) expect((await readVolume(join(d, "pix.nii"))).spacing[0]).toBe(1);
      else
        await expect(readVolume(join(d, "pix.nii"))).rejects.toThrow(
          /pix\.nii has pixdim\[2\] = .*, not a voxel size/,
        );
    }
  });

  it("writes a qform that agrees with the sform, for proper and improper rotations", async () => {
    const d = tmp();
    const { NIFTI1, readHeader } = await import("nifti-reader-js");
    for (const affine of [
      [0, 0, 3, -5, -0.8, 0, 0, 2, 0, -0.7, 0, 9, 0, 0, 0, 1],
      [0.9 * c, -1.1 * s, 0, 1, 0.9 * s, 1.1 * c, 0, 2, 0, 0, 2.5, 3, 0, 0, 0, 1],
      oblique,
    ]) {
      await writeVolume(join(d, "q.nii"), makeVolume(2, 3, 4, undefined, { affine }));
      const bytes = readFileSync(join(d, "q.nii"));
      // Zero the sform code so that the reader falls back on the qform.
      bytes.writeInt16LE(0, 254);
      const h = readHeader(
        bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer,
      );
      expect(h).toBeInstanceOf(NIFTI1);
      h.affine.flat().forEach((x, i) => expect(x).toBeCloseTo(affine[i], 5));
    }
  });
});

describe("PNG: bit depths, windows and errors", () => {
  it("reads 16-bit grey as stored (0..65535)", () => {
    const im = readPng(fixture("grey16.png"));
    expect([im.rows, im.cols]).toEqual([3, 4]);
    expect(Array.from(im.data)).toEqual([0, 1, 256, 1000, 40000, 65535, 2, 3, 7, 8, 9, 10]);
  });

  it("reads RGB with R = G = B as grey", async () => {
    const d = tmp();
    const { PNG } = await import("pngjs");
    const rgb = new PNG({ width: 2, height: 1 });
    rgb.data = Buffer.from([7, 7, 7, 255, 200, 200, 200, 255]);
    writeFileSync(join(d, "rgb.png"), PNG.sync.write(rgb));
    expect(Array.from(readPng(join(d, "rgb.png")).data)).toEqual([7, 200]);
  });

  it("default window is the finite min..max; NaN is black, infinities clip", () => {
    const img = { rows: 1, cols: 5, data: Float32Array.from([-2, 2, NaN, Infinity, -Infinity]) };
    const d = tmp();
    writeFileSync(join(d, "w.png"), encodePng(img));
    expect(Array.from(readPng(join(d, "w.png")).data)).toEqual([0, 255, 0, 255, 0]);
    writeFileSync(join(d, "w2.png"), encodePng(img, { min: 0, max: 4 }));
    expect(Array.from(readPng(join(d, "w2.png")).data)).toEqual([0, 128, 0, 255, 0]);
  });

  it("a non-PNG file with a .png name is a one-line error naming it", async () => {
    const d = tmp();
    writeFileSync(join(d, "fake.png"), "GIF89a");
    await expect(readVolume(join(d, "fake.png"))).rejects.toThrow(
      /fake\.png is not a PNG file \(bad signature\)/,
    );
  });
});

describe("writing into a missing or unwritable place", () => {
  it("is a UserError naming the path, and leaves nothing behind", async () => {
    const d = tmp();
    const target = join(d, "no-such-folder", "out.nii.gz");
    const err = await writeVolume(target, makeVolume(1, 2, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(
      `cannot write ${target}: its folder ${join(d, "no-such-folder")} does not exist`,
    );
    mkdirSync(join(d, "taken.npy"));
    await expect(writeNpyArray(join(d, "taken.npy"), { shape: [2], data: [1, 2] })).rejects.toThrow(
      /cannot write .*taken\.npy: a folder of that name is in the way/,
    );
    expect(readdirSync(d)).toEqual(["taken.npy"]);
  });
});

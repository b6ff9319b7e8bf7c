/**
 * Hostile and degenerate uploads: decompression bombs (gzip NIfTI, deflated DICOM, zips) are
 * stopped at the server's decompression limit with 413 while decompressing, a zip's entry count
 * is checked before anything is extracted, degenerate images are refused with 400 naming the
 * user's file (never the server's stored name), and parsing runs off the event loop. The bombs
 * are made here (zeros compress to almost nothing), never committed.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import dcmjs from "dcmjs";
import request from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { encodeNifti1 } from "../../src/io/nifti.js";
import { createServer, listen, type ScoreReconServer } from "../../server/app.js";

const root = mkdtempSync(join(tmpdir(), "scorerecon-uploads-"));
const MiB = 2 ** 20;
let s: ScoreReconServer;
let server: Server;
const logs: string[] = [];

beforeAll(async () => {
  s = createServer({
    dataDir: join(root, "data"),
    workers: 1,
    limits: { fileSize: 4 * MiB, files: 20, decompressed: 2 * MiB },
    log: (l) => logs.push(l),
  });
  await s.ready;
  server = await listen(s, 0, "127.0.0.1");
});
afterAll(async () => {
  server?.close();
  await s?.close();
});

const { DicomDict, DicomMetaDictionary } = dcmjs.data;
const EXPLICIT = "1.2.840.10008.1.2.1";
const DEFLATED = "1.2.840.10008.1.2.1.99";

/** A DICOM file (dcmjs), explicit VR little endian, or deflated (PS3.5 A.5) when asked. */
function dicom(o: {
  rows: number;
  cols: number;
  frames?: string;
  pixels?: Uint16Array;
  deflated?: boolean;
  uid?: string;
}): Buffer {
  const uid = o.uid ?? "1.2.826.0.1.3680043.9.7777.9.1.1";
  const ds: Record<string, unknown> = {
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.7",
    SOPInstanceUID: uid,
    StudyInstanceUID: "1.2.826.0.1.3680043.9.7777.9",
    SeriesInstanceUID: "1.2.826.0.1.3680043.9.7777.9.1",
    Modality: "MR",
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    Rows: o.rows,
    Columns: o.cols,
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: 0,
    PixelData: (o.pixels ?? new Uint16Array(Math.max(1, o.rows * o.cols))).buffer,
    _vrMap: { PixelData: "OW" },
  };
  if (o.frames !== undefined) ds.NumberOfFrames = o.frames;
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: ds.SOPClassUID,
    MediaStorageSOPInstanceUID: uid,
    TransferSyntaxUID: o.deflated ? DEFLATED : EXPLICIT,
    ImplementationClassUID: "1.2.826.0.1.3680043.9.7777.100",
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  const bytes = Buffer.from(dict.write());
  if (!o.deflated) return bytes;
  // dcmjs writes the data set plainly: deflate everything after the file meta group.
  const metaEnd = 132 + 12 + bytes.readUInt32LE(132 + 8);
  return Buffer.concat([bytes.subarray(0, metaEnd), deflateRawSync(bytes.subarray(metaEnd))]);
}

async function zipOf(entries: [string, Buffer][]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of entries) zip.addBuffer(data, name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** POSTs files (name -> bytes) as one upload. */
async function upload(files: [string, Buffer][]): Promise<request.Response> {
  let req = request(s.app).post("/api/studies");
  for (const [name, data] of files) {
    const path = join(root, "in", `${Math.random().toString(36).slice(2)}-${name}`);
    mkdirSync(join(root, "in"), { recursive: true });
    writeFileSync(path, data);
    req = req.attach("files", path, { filename: name });
  }
  return req;
}

function expectRefused(r: request.Response, status: number, message: RegExp) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.error.field).toBe("files");
  expect(r.body.error.message).toMatch(message);
  // Never the server's stored names or paths.
  expect(r.body.error.message).not.toMatch(/\b\d{6}\.(dcm|nii)|z\d{6}|\/uploads\/|scorerecon-uploads-/);
  expect(readdirSync(join(root, "data", "uploads"))).toEqual([]);
}

const niftiOf = (rows: number, cols: number, data: Float32Array, gzip: boolean) =>
  Buffer.from(encodeNifti1(makeVolume(1, rows, cols, data, { modality: "MR" }), gzip));

describe("decompression limit (2 MiB here)", () => {
  it("a .nii.gz that expands past it is refused with 413 while gunzipping", async () => {
    const bomb = niftiOf(1024, 1024, new Float32Array(1024 * 1024), true); // 4 MiB of zeros
    expect(bomb.length).toBeLessThan(64 * 1024);
    expectRefused(
      await upload([["bomb.nii.gz", bomb]]),
      413,
      /^bomb\.nii\.gz expands to more than the decompression limit of 2 MiB$/,
    );
    // Under the limit it is read as usual.
    const ok = await upload([["ok.nii.gz", niftiOf(64, 64, generatePhantom("brain", 64, 1).data, true)]]);
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
  });

  it("deflated-syntax DICOM files that expand past it are refused with 413", async () => {
    const one = dicom({ rows: 512, cols: 512, deflated: true }); // 512 KiB of pixels each
    expect(one.length).toBeLessThan(8 * 1024);
    const files: [string, Buffer][] = [0, 1, 2, 3, 4].map((k) => [
      `IM${k}`,
      dicom({ rows: 512, cols: 512, deflated: true, uid: `1.2.826.0.1.3680043.9.7777.9.1.${k + 1}` }),
    ]);
    expectRefused(await upload(files), 413, /^IM\d expands to more than the decompression limit of 2 MiB$/);
  });

  it("a zip whose entries add up past it is refused before anything is extracted", async () => {
    const zeros = Buffer.alloc(900 * 1024);
    const zip = await zipOf([
      ["a.dcm", zeros],
      ["b.dcm", zeros],
      ["c.dcm", zeros],
    ]);
    expect(zip.length).toBeLessThan(16 * 1024);
    expectRefused(
      await upload([["bomb.zip", zip]]),
      413,
      /^bomb\.zip expands to more than the decompression limit of 2 MiB$/,
    );
  });

  it("a zip's entry count is checked from its directory, before extracting", async () => {
    const tiny = Buffer.from("x");
    const zip = await zipOf(Array.from({ length: 25 }, (_, i) => [`f${i}.dcm`, tiny] as [string, Buffer]));
    expectRefused(
      await upload([["many.zip", zip]]),
      413,
      /^many\.zip: holds 25 entries; an upload may hold 20 files in all$/,
    );
  });
});

describe("file-size limit (4 MiB here)", () => {
  it("a zip entry over it is named as the user would read it, sizes in MiB", async () => {
    // A long entry name with control characters: quoted cleaned and shortened, never raw.
    const name = `a\u0001\u001b[31m${"b".repeat(300)}.dcm`;
    const zip = await zipOf([[name, Buffer.alloc(5 * MiB)]]);
    const r = await upload([["big.zip", zip]]);
    expectRefused(
      r,
      413,
      /^big\.zip: a\?\?\[31mb+\.\.\. expands to 5 MiB, over the limit of 4 MiB per file$/,
    );
    expect(r.body.error.message.length).toBeLessThan(200);
  });

  it("a file over it is refused naming the limit in MiB", async () => {
    const r = await upload([["big.dcm", Buffer.alloc(5 * MiB)]]);
    expectRefused(r, 413, /^files: a file is larger than the limit of 4 MiB$/);
  });
});

describe("degenerate images are refused at upload, naming the user's file", () => {
  it("a file that is not DICOM is named by the user's name", async () => {
    const r = await upload([["kspace.npy", Buffer.from("\x93NUMPY not an image")]]);
    expectRefused(r, 400, /^kspace\.npy is not a readable DICOM file \(/);
  });

  it("DICOM with Rows 0, NumberOfFrames 0 or negative", async () => {
    expectRefused(
      await upload([["rows0.dcm", dicom({ rows: 0, cols: 16 })]]),
      400,
      /^rows0\.dcm has Rows 0; an image needs 1 or more$/,
    );
    for (const frames of ["0", "-2"])
      expectRefused(
        await upload([[`frames${frames}.dcm`, dicom({ rows: 16, cols: 16, frames })]]),
        400,
        new RegExp(`^frames${frames}\\.dcm has NumberOfFrames ${frames}; an image needs 1 or more$`),
      );
  });

  it("a NIfTI with NaN or infinite values", async () => {
    const data = generatePhantom("brain", 32, 1).data.slice();
    data[5] = NaN;
    data[7] = Infinity;
    expectRefused(
      await upload([["nan.nii", niftiOf(32, 32, data, false)]]),
      400,
      /^nan\.nii: 2 of 1024 values are NaN or infinite; images must hold finite numbers$/,
    );
    expectRefused(
      await upload([["allnan.nii.gz", niftiOf(32, 32, new Float32Array(1024).fill(NaN), true)]]),
      400,
      /allnan\.nii\.gz: 1024 of 1024 values are NaN/,
    );
  });

  it("images smaller than the SSIM window (11 x 11)", async () => {
    expectRefused(
      await upload([["small.nii.gz", niftiOf(8, 32, new Float32Array(256).fill(1), true)]]),
      400,
      /^small\.nii\.gz: the image is 8x32; .* at least 11x11$/,
    );
    expectRefused(
      await upload([["IM1", dicom({ rows: 16, cols: 10 })]]),
      400,
      /^IM1: the image is 16x10; .* at least 11x11$/,
    );
  });
});

describe("ingestion off the event loop", () => {
  it("a 12-bit JPEG extended file is decoded in the parser thread", async () => {
    const fixture = new URL("../fixtures/dicom/jpeg-extended-12bit.dcm", import.meta.url).pathname;
    const r = await upload([["jpeg12.dcm", readFileSync(fixture)]]);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.series[0]).toMatchObject({ rows: 32, cols: 32, slices: 1 });
  });

  it("uploads at once are parsed a few at a time and all stored", async () => {
    const rs = await Promise.all(
      Array.from({ length: 5 }, (_, k) =>
        upload([[`b${k}.nii.gz`, niftiOf(32, 32, generatePhantom("brain", 32, k).data, true)]]),
      ),
    );
    expect(rs.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(rs.map((r) => r.body.id)).size).toBe(5);
  });

  it("keeps answering requests while a large series is parsed", async () => {
    // Small to send (1 KiB a file), heavy to parse: 24 deflated 512 x 512 slices (12 MiB of pixels).
    const t = createServer({
      dataDir: join(root, "data-big"),
      workers: 1,
      limits: { fileSize: 4 * MiB, files: 100, decompressed: 64 * MiB },
    });
    const srv = await listen(t, 0, "127.0.0.1");
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const form = new FormData();
      for (let k = 0; k < 24; k++) {
        const px = new Uint16Array(512 * 512).fill(100 * k);
        const bytes = dicom({
          rows: 512,
          cols: 512,
          pixels: px,
          deflated: true,
          uid: `1.2.826.0.1.3680043.9.7777.9.1.${k + 1}`,
        });
        form.append("files", new Blob([new Uint8Array(bytes)]), `IM${k}`);
      }
      let done = false;
      const posted = fetch(`${url}/api/studies`, { method: "POST", body: form }).finally(() => (done = true));
      // The upload is being parsed while its 24 files are received and no study is being stored
      // yet (storage.ts builds a study in uploads/<id>.study once its volumes are read).
      const uploads = join(root, "data-big", "uploads");
      const parsing = () => {
        const entries = readdirSync(uploads);
        return (
          !entries.some((e) => e.endsWith(".study")) &&
          entries.some((e) => readdirSync(join(uploads, e)).length === 24)
        );
      };
      // /healthz, one after another, while the upload is in flight.
      let answeredWhileParsing = 0;
      while (!done) {
        const h = await fetch(`${url}/healthz`);
        await h.arrayBuffer();
        if (h.status === 200 && parsing()) answeredWhileParsing++;
      }
      const r = await posted;
      expect(r.status).toBe(201);
      expect((await r.json()).series[0].slices).toBe(24);
      // Parsing on the event loop would hold every request until it is over.
      expect(answeredWhileParsing).toBeGreaterThan(20);
    } finally {
      srv.close();
      await t.close();
    }
  }, 120_000);
});

/**
 * DICOM series in (dicom-parser): a file, or a folder searched recursively (DICOMDIR trees
 * included; the DICOMDIR file itself is skipped). Instances are grouped by SeriesInstanceUID and
 * sorted by ImagePositionPatient projected on the slice normal (the cross product of the two
 * ImageOrientationPatient directions; PS3.3 C.7.6.2.1.1), falling back to InstanceNumber.
 * Multi-frame instances become slices.
 *
 * Pixels (PS3.3 C.7.6.3): BitsAllocated 8/16/32, PixelRepresentation signed or unsigned, values
 * masked to BitsStored (sign-extended when signed), RescaleSlope/Intercept applied (CT values are
 * HU), MONOCHROME1 inverted to the MONOCHROME2 sense. Colour images are refused. Transfer
 * syntaxes: implicit and explicit VR little endian, explicit VR big endian, deflated, and the
 * encapsulated ones of dicom-codecs.ts (RLE, JPEG baseline 8-bit, JPEG lossless, JPEG-LS,
 * JPEG 2000); others give a one-line error naming the syntax.
 *
 * A broken or non-image file inside a folder is reported (skipped) and the rest still loads; a
 * single file given directly that is broken is an error naming it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import dicomParser from "dicom-parser";
import { UserError } from "../errors.js";
import { makeVolume, type Volume } from "../image/volume.js";
import { DecompressionBudget } from "./decompression.js";
import { decodeFrame, ENCAPSULATED, type FrameInfo } from "./dicom-codecs.js";

const SYNTAXES: Record<string, string> = {
  "1.2.840.10008.1.2": "implicit VR little endian",
  "1.2.840.10008.1.2.1": "explicit VR little endian",
  "1.2.840.10008.1.2.2": "explicit VR big endian",
  "1.2.840.10008.1.2.1.99": "deflated explicit VR little endian",
  "1.2.840.10008.1.2.5": "RLE lossless",
  "1.2.840.10008.1.2.4.50": "JPEG baseline",
  "1.2.840.10008.1.2.4.51": "JPEG extended",
  "1.2.840.10008.1.2.4.57": "JPEG lossless",
  "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
};
const NATIVE = new Set([
  "1.2.840.10008.1.2",
  "1.2.840.10008.1.2.1",
  "1.2.840.10008.1.2.2",
  "1.2.840.10008.1.2.1.99",
]);

export const syntaxName = (uid: string) => SYNTAXES[uid] ?? `transfer syntax ${uid}`;

interface Instance {
  file: string;
  ds: dicomParser.DataSet;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface DicomSeriesSummary {
  seriesInstanceUid: string;
  modality: string;
  description: string;
  rows: number;
  cols: number;
  slices: number;
  transferSyntax: string;
  files: number;
}

/** True when the file has the DICOM preamble magic "DICM" at byte 128. */
export function looksLikeDicom(path: string): boolean {
  try {
    const b = readFileSync(path);
    return b.length > 132 && b.toString("latin1", 128, 132) === "DICM";
  } catch {
    return false;
  }
}

function parse(file: string, budget: DecompressionBudget): Instance {
  const bytes = readFileSync(file);
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, {
      inflater: (arr: Uint8Array, position: number) => {
        // Deflated syntax (PS3.5 A.5): raw deflate of everything after the file meta group.
        const inflated = budget.inflateRaw(arr.subarray(position), file);
        const out = new Uint8Array(position + inflated.length);
        out.set(arr.subarray(0, position));
        out.set(inflated, position);
        return out;
      },
    } as dicomParser.ParseDicomOptions);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg =
      typeof e === "string"
        ? e
        : ((e as { exception?: string }).exception ?? (e as Error).message ?? String(e));
    throw new UserError(`${file} is not a readable DICOM file (${msg})`, "bad_dicom", file);
  }
  if (!ds.elements.x7fe00010) throw new UserError(`${file} has no Pixel Data (7FE0,0010)`, "bad_dicom", file);
  // An image of no pixels or no frames (PS3.3 C.7.6.3: Rows, Columns >= 1; C.7.6.6: NumberOfFrames >= 1).
  for (const [tag, name] of [
    ["x00280010", "Rows"],
    ["x00280011", "Columns"],
  ] as const) {
    const v = ds.uint16(tag);
    if (!v)
      throw new UserError(
        `${file} has ${name} ${v ?? "missing"}; an image needs 1 or more`,
        "bad_dicom",
        file,
      );
  }
  const f = frames(ds);
  if (!(Number.isInteger(f) && f >= 1))
    throw new UserError(
      `${file} has NumberOfFrames ${ds.string("x00280008") ?? f}; an image needs 1 or more`,
      "bad_dicom",
      file,
    );
  return { file, ds };
}

function collect(
  path: string,
  budget: DecompressionBudget,
): { instances: Instance[]; skipped: SkippedFile[] } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`${path}: no such file or folder`, "not_found", path);
  }
  if (!st.isDirectory()) return { instances: [parse(path, budget)], skipped: [] };
  const instances: Instance[] = [];
  const skipped: SkippedFile[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (basename(p).toUpperCase() !== "DICOMDIR") {
        try {
          instances.push(parse(p, budget));
        } catch (err) {
          // Past the decompression limit nothing more is read.
          if (err instanceof UserError && err.code === "too_large") throw err;
          skipped.push({
            file: p,
            reason: err instanceof UserError ? err.message.replace(`${p} `, "") : String(err),
          });
        }
      }
    }
  };
  walk(path);
  // A folder of one file that cannot be read: that file's own message.
  if (instances.length === 0 && skipped.length === 1)
    throw new UserError(`${skipped[0].file} ${skipped[0].reason}`, "bad_dicom", skipped[0].file);
  if (instances.length === 0)
    throw new UserError(
      `${path} holds no readable DICOM image${skipped.length ? ` (${skipped.length} file(s) skipped, e.g. ${skipped[0].file}: ${skipped[0].reason})` : ""}`,
      "bad_dicom",
      path,
    );
  return { instances, skipped };
}

function bySeries(instances: Instance[]): Map<string, Instance[]> {
  const m = new Map<string, Instance[]>();
  for (const i of instances) {
    const uid = i.ds.string("x0020000e") ?? "(no SeriesInstanceUID)";
    m.set(uid, [...(m.get(uid) ?? []), i]);
  }
  return m;
}

const frames = (ds: dicomParser.DataSet) => ds.intString("x00280008") ?? 1;

function summary(uid: string, list: Instance[]): DicomSeriesSummary {
  const ds = list[0].ds;
  return {
    seriesInstanceUid: uid,
    modality: ds.string("x00080060") ?? "OT",
    description: ds.string("x0008103e") ?? "",
    rows: ds.uint16("x00280010") ?? 0,
    cols: ds.uint16("x00280011") ?? 0,
    slices: list.reduce((n, i) => n + frames(i.ds), 0),
    transferSyntax: syntaxName(ds.string("x00020010") ?? "1.2.840.10008.1.2"),
    files: list.length,
  };
}

export function listDicomSeries(
  path: string,
  options: { budget?: DecompressionBudget } = {},
): { series: DicomSeriesSummary[]; skipped: SkippedFile[] } {
  const { instances, skipped } = collect(path, options.budget ?? new DecompressionBudget());
  return { series: [...bySeries(instances)].map(([uid, list]) => summary(uid, list)), skipped };
}

/** Every series of a file or folder, each read once: its summary, volume and files (in slice order). */
export async function readDicomStudy(
  path: string,
  options: { budget?: DecompressionBudget } = {},
): Promise<{
  series: { summary: DicomSeriesSummary; volume: Volume; files: string[] }[];
  skipped: SkippedFile[];
}> {
  const budget = options.budget ?? new DecompressionBudget();
  const { instances, skipped } = collect(path, budget);
  const series = [];
  for (const [uid, list] of bySeries(instances)) {
    const { volume, sorted } = await seriesVolume(list, budget);
    series.push({ summary: summary(uid, list), volume, files: sorted.map((i) => i.file) });
  }
  return { series, skipped };
}

function numbers(ds: dicomParser.DataSet, tag: string, n: number): number[] | undefined {
  const v = Array.from({ length: n }, (_, i) => ds.floatString(tag, i));
  return v.every((x) => x !== undefined && Number.isFinite(x)) ? (v as number[]) : undefined;
}

/** The raw bytes of each frame: native pixel data as stored, encapsulated frames decoded. */
async function frameBytes(
  inst: Instance,
  syntax: string,
  info: FrameInfo,
  budget: DecompressionBudget,
): Promise<{ bytes: Uint8Array; little: boolean }[]> {
  const { ds, file } = inst;
  const n = info.rows * info.cols,
    bytesPer = info.bitsAllocated / 8;
  const el = ds.elements.x7fe00010;
  const count = frames(ds);
  if (NATIVE.has(syntax)) {
    if (el.dataOffset + el.length > ds.byteArray.length || el.length < count * n * bytesPer)
      throw new UserError(
        `${file} is truncated: Pixel Data holds ${Math.min(el.length, ds.byteArray.length - el.dataOffset)} bytes, ${count} frame(s) need ${count * n * bytesPer}`,
        "bad_dicom",
        file,
      );
    const little = syntax !== "1.2.840.10008.1.2.2";
    return Array.from({ length: count }, (_, f) => ({
      bytes: ds.byteArray.subarray(el.dataOffset + f * n * bytesPer, el.dataOffset + (f + 1) * n * bytesPer),
      little,
    }));
  }
  if (!ENCAPSULATED[syntax])
    throw new UserError(
      `${file} uses ${syntaxName(syntax)} (${syntax}), which scorerecon cannot decode`,
      "bad_dicom",
      file,
    );
  const out: { bytes: Uint8Array; little: boolean }[] = [];
  for (let f = 0; f < count; f++) {
    // Each decoded frame is decompressed data: taken from the budget before it is made.
    budget.take(n * bytesPer, file);
    let encoded: Uint8Array;
    try {
      encoded =
        el.basicOffsetTable && el.basicOffsetTable.length
          ? dicomParser.readEncapsulatedImageFrame(ds, el, f)
          : count === 1
            ? dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments!.length)
            : dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, f, 1);
      const bytes = await decodeFrame(syntax, encoded, info);
      if (bytes.length < n * bytesPer)
        throw new Error(`decoded ${bytes.length} bytes, expected ${n * bytesPer}`);
      out.push({ bytes, little: true });
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(
        `${file}: cannot decode frame ${f} (${syntaxName(syntax)}): ${(e as Error).message ?? e}`,
        "bad_dicom",
        file,
      );
    }
  }
  return out;
}

/** Decodes one instance's frames (rescaled, MONOCHROME2 sense). */
async function decodeFrames(
  inst: Instance,
  rows: number,
  cols: number,
  budget: DecompressionBudget,
): Promise<Float32Array[]> {
  const { ds, file } = inst;
  const syntax = ds.string("x00020010") ?? "1.2.840.10008.1.2";
  const spp = ds.uint16("x00280002") ?? 1;
  const photometric = (ds.string("x00280004") ?? "MONOCHROME2").trim();
  if (spp !== 1 || !photometric.startsWith("MONOCHROME"))
    throw new UserError(
      `${file} is a colour image (${photometric}); colour images are not supported (a reconstruction tool works on grey levels)`,
      "bad_dicom",
      file,
    );
  const bits = ds.uint16("x00280100") ?? 16;
  const stored = ds.uint16("x00280101") ?? bits;
  const signed = (ds.uint16("x00280103") ?? 0) === 1;
  const slope = ds.floatString("x00281053") ?? 1;
  const intercept = ds.floatString("x00281052") ?? 0;
  if (![8, 16, 32].includes(bits))
    throw new UserError(`${file} has BitsAllocated ${bits}; 8, 16 or 32 are supported`, "bad_dicom", file);
  const n = rows * cols;
  const bytesPer = bits / 8;
  const mask = stored >= 32 ? 0xffffffff : 2 ** stored - 1;
  const info = { rows, cols, bitsAllocated: bits, bitsStored: stored, signed };
  // Loop invariants hoisted: this loop runs once per pixel of every slice.
  const masked = stored < 32,
    full = 2 ** Math.min(stored, 32),
    half = full / 2,
    mono1 = photometric === "MONOCHROME1";
  return (await frameBytes(inst, syntax, info, budget)).map(({ bytes, little }) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const frame = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * bytesPer;
      let raw =
        bits === 8 ? view.getUint8(o) : bits === 16 ? view.getUint16(o, little) : view.getUint32(o, little);
      if (masked) {
        raw &= mask;
        if (signed && raw >= half) raw -= full;
      } else if (signed) raw |= 0;
      // MONOCHROME1: the minimum is white (PS3.3 C.7.6.3.1.2); invert within the stored range.
      if (mono1) raw = signed ? -1 - raw : mask - raw;
      frame[i] = raw * slope + intercept;
    }
    return frame;
  });
}

export async function readDicomSeries(
  path: string,
  options: { seriesUid?: string; budget?: DecompressionBudget } = {},
): Promise<{ volume: Volume; skipped: SkippedFile[] }> {
  const budget = options.budget ?? new DecompressionBudget();
  const { instances, skipped } = collect(path, budget);
  const groups = bySeries(instances);
  let uid = options.seriesUid;
  if (!uid) {
    if (groups.size > 1) {
      const list = [...groups]
        .map(([u, l]) => summary(u, l))
        .map(
          (s) =>
            `${s.seriesInstanceUid} (${s.modality}, ${s.slices} slice(s)${s.description ? `, ${s.description}` : ""})`,
        );
      throw new UserError(
        `${path} holds ${groups.size} series; choose one with --series UID: ${list.join("; ")}`,
        "ambiguous_series",
        "--series",
      );
    }
    uid = [...groups.keys()][0];
  }
  const list = groups.get(uid);
  if (!list) throw new UserError(`${path} has no series ${uid}`, "not_found", "--series");
  return { volume: (await seriesVolume(list, budget)).volume, skipped };
}

/** One series' instances as a volume, slices sorted along the normal. */
async function seriesVolume(
  list: Instance[],
  budget: DecompressionBudget,
): Promise<{ volume: Volume; sorted: Instance[] }> {
  const first = list[0].ds;
  const rows = first.uint16("x00280010") ?? 0,
    cols = first.uint16("x00280011") ?? 0;
  for (const i of list) {
    const r = i.ds.uint16("x00280010"),
      c = i.ds.uint16("x00280011");
    if (r !== rows || c !== cols)
      throw new UserError(`${i.file} is ${r}x${c} but its series is ${rows}x${cols}`, "bad_dicom", i.file);
  }
  const iop = numbers(first, "x00200037", 6) ?? [1, 0, 0, 0, 1, 0];
  const normal = [
    iop[1] * iop[5] - iop[2] * iop[4],
    iop[2] * iop[3] - iop[0] * iop[5],
    iop[0] * iop[4] - iop[1] * iop[3],
  ];
  const along = (ds: dicomParser.DataSet) => {
    const p = numbers(ds, "x00200032", 3);
    return p ? p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2] : undefined;
  };
  const sorted = [...list].sort((a, b) => {
    const pa = along(a.ds),
      pb = along(b.ds);
    if (pa !== undefined && pb !== undefined && pa !== pb) return pa - pb;
    return (a.ds.intString("x00200013") ?? 0) - (b.ds.intString("x00200013") ?? 0);
  });
  const slices: Float32Array[] = [];
  for (const i of sorted) slices.push(...(await decodeFrames(i, rows, cols, budget)));
  const data = new Float32Array(slices.length * rows * cols);
  slices.forEach((s, k) => data.set(s, k * rows * cols));
  const [rowSpacing, colSpacing] = numbers(first, "x00280030", 2) ?? [1, 1];
  const p0 = along(sorted[0].ds),
    p1 = sorted.length > 1 ? along(sorted[1].ds) : undefined;
  const sliceSpacing =
    p0 !== undefined && p1 !== undefined ? Math.abs(p1 - p0) || 1 : (first.floatString("x00180050") ?? 1);
  const modality = (first.string("x00080060") ?? "OT").trim();
  const ipp = numbers(sorted[0].ds, "x00200032", 3) ?? [0, 0, 0];
  // Voxel (col, row, slice) -> LPS: IPP + col dc * colSpacing * IOP[0:3] + row * rowSpacing * IOP[3:6]
  // + slice * step * normal; RAS flips x and y.
  const lps = [0, 1, 2].map((a) => [
    iop[a] * colSpacing,
    iop[3 + a] * rowSpacing,
    normal[a] * sliceSpacing,
    ipp[a],
  ]);
  const affine = [...lps[0].map((v) => -v), ...lps[1].map((v) => -v), ...lps[2], 0, 0, 0, 1];
  const keywords: [string, string][] = [
    ["PatientName", "x00100010"],
    ["PatientID", "x00100020"],
    ["PatientBirthDate", "x00100030"],
    ["PatientSex", "x00100040"],
    ["StudyInstanceUID", "x0020000d"],
    ["StudyDate", "x00080020"],
    ["StudyTime", "x00080030"],
    ["StudyID", "x00200010"],
    ["AccessionNumber", "x00080050"],
    ["ReferringPhysicianName", "x00080090"],
    ["StudyDescription", "x00081030"],
  ];
  const patientStudy = Object.fromEntries(keywords.map(([k, tag]) => [k, first.string(tag) ?? ""]));
  // Multi-frame instances contribute one source entry per frame, at the instance's position.
  const sourceSlices = sorted.flatMap((i) =>
    Array.from({ length: frames(i.ds) }, () => ({
      sopClassUid: i.ds.string("x00080016") ?? "",
      sopInstanceUid: i.ds.string("x00080018") ?? "",
      position: numbers(i.ds, "x00200032", 3),
    })),
  );
  const volume = makeVolume(slices.length, rows, cols, data, {
    dicom: {
      patientStudy,
      frameOfReferenceUid: first.string("x00200052"),
      modality,
      patientPosition: first.string("x00185100"),
      slices: sourceSlices,
      orientation: numbers(first, "x00200037", 6),
    },
    spacing: [rowSpacing, colSpacing, sliceSpacing],
    modality: modality === "CT" ? "CT" : modality === "MR" ? "MR" : "OT",
    units: modality === "CT" ? "HU" : "arbitrary",
    affine,
  });
  return { volume, sorted };
}

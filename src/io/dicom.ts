/**
 * DICOM series in: the instances of a file or folder (dicom-files.ts) grouped by
 * SeriesInstanceUID and sorted by ImagePositionPatient projected on the slice normal (the cross
 * product of the two ImageOrientationPatient directions; PS3.3 C.7.6.2.1.1), falling back to
 * InstanceNumber; multi-frame instances become slices. The pixels are decoded by dicom-pixels.ts;
 * the volume's spacing, affine (RAS) and DICOM source (for derived series) come from here.
 */
import type dicomParser from "dicom-parser";
import { UserError } from "../errors.js";
import { makeVolume, type Volume } from "../image/volume.js";
import { DecompressionBudget } from "./decompression.js";
import { collectInstances, frames, type Instance, type SkippedFile } from "./dicom-files.js";
import { decodeFrames, syntaxName } from "./dicom-pixels.js";

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

function bySeries(instances: Instance[]): Map<string, Instance[]> {
  const m = new Map<string, Instance[]>();
  for (const i of instances) {
    const uid = i.ds.string("x0020000e") ?? "(no SeriesInstanceUID)";
    m.set(uid, [...(m.get(uid) ?? []), i]);
  }
  return m;
}

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
  const { instances, skipped } = collectInstances(path, options.budget ?? new DecompressionBudget());
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
  const { instances, skipped } = collectInstances(path, budget);
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

export async function readDicomSeries(
  path: string,
  options: { seriesUid?: string; budget?: DecompressionBudget } = {},
): Promise<{ volume: Volume; skipped: SkippedFile[] }> {
  const budget = options.budget ?? new DecompressionBudget();
  const { instances, skipped } = collectInstances(path, budget);
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

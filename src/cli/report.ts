/**
 * What `reconstruct` (and `phantom-demo`) write and print: the volumes, PNGs and DICOM series of
 * each method, the metrics.json summary of a study, metrics.csv (one row per study and method and
 * one per slice) and the metrics table.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { realisedAcceleration } from "../../operators/masks.js";
import { valueRange } from "../image/stats.js";
import { sliceOf, type Volume } from "../image/volume.js";
import { writeDicomSeries } from "../io/dicom-write.js";
import { writePng, writeVolume } from "../io/index.js";
import { describeAcquisition } from "../recon/acquisition.js";
import { describeDerivation } from "../recon/methods.js";
import type { ReconResult } from "../recon/reconstruct.js";

export interface StudySummary {
  study: string;
  modality: string;
  settings: { acquisition: unknown; description: string; dataRange?: number; realisedAcceleration?: number };
  results: {
    method: string;
    params: unknown;
    psnr: number | null;
    ssim: number | null;
    nmse: number | null;
    /** The method's time over all slices, and per slice. */
    seconds: number;
    secondsPerSlice: number;
  }[];
  perSlice: Record<string, { slice: number; psnr: number; ssim: number; nmse: number; seconds: number }[]>;
}

export function studySummary(study: string, result: ReconResult): StudySummary {
  return {
    study,
    modality: result.acquisition.modality,
    settings: {
      acquisition: result.acquisition,
      description: describeAcquisition(result.acquisition),
      dataRange: result.dataRange,
      ...(result.mask ? { realisedAcceleration: realisedAcceleration(result.mask) } : {}),
    },
    results: result.results.map((r) => ({
      method: r.method,
      params: r.params,
      psnr: r.metrics?.psnr ?? null,
      ssim: r.metrics?.ssim ?? null,
      nmse: r.metrics?.nmse ?? null,
      seconds: r.seconds,
      secondsPerSlice: r.seconds / r.volume.slices,
    })),
    perSlice: Object.fromEntries(result.results.map((r) => [r.method, r.perSlice ?? []])),
  };
}

/** One row per study and method (slice "mean", its seconds the mean per slice) and one per slice. */
export function metricsCsv(studies: StudySummary[]): string {
  const num = (v: number | null | undefined, d: number) =>
    v === null || v === undefined ? "" : v.toFixed(d);
  const text = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const lines = ["study,method,slice,psnr,ssim,nmse,seconds"];
  for (const s of studies)
    for (const r of s.results) {
      lines.push(
        [
          text(s.study),
          r.method,
          "mean",
          num(r.psnr, 4),
          num(r.ssim, 5),
          num(r.nmse, 6),
          num(r.secondsPerSlice, 3),
        ].join(","),
      );
      for (const p of s.perSlice[r.method] ?? [])
        lines.push(
          [
            text(s.study),
            r.method,
            p.slice,
            num(p.psnr, 4),
            num(p.ssim, 5),
            num(p.nmse, 6),
            num(p.seconds, 3),
          ].join(","),
        );
    }
  return lines.join("\n") + "\n";
}

export const OUTPUT_FORMATS = ["nifti", "npy", "cfl", "dicom"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
const EXTENSION = { nifti: ".nii.gz", npy: ".npy", cfl: ".cfl", dicom: "" } as const;

export async function writeResults(
  dir: string,
  result: ReconResult,
  reference?: Volume,
  format: OutputFormat = "nifti",
  anonymise = false,
): Promise<void> {
  const ext = EXTENSION[format];
  mkdirSync(dir, { recursive: true });
  // One display window for every method (the reference's range) so the PNGs compare fairly.
  const windowFrom = reference ?? result.results[0].volume;
  const { min, max } = valueRange(windowFrom.data);
  const mid = Math.floor(windowFrom.slices / 2);
  if (reference) await writePng(join(dir, "reference.png"), sliceOf(reference, mid), { min, max });
  for (const r of result.results) {
    // A method's volume and its uncertainty map, both in the chosen format.
    const write = (name: string, v: Volume, what: string) =>
      format === "dicom"
        ? writeDicomSeries(join(dir, name), v, {
            description: `scorerecon ${what}`,
            derivation: describeDerivation({ name: r.method, params: r.params }, result.acquisition),
            anonymise,
          })
        : writeVolume(join(dir, `${name}${ext}`), v);
    await write(r.method, r.volume, r.method);
    if (r.uncertainty) {
      await write(`${r.method}-std`, r.uncertainty, `${r.method} posterior std`);
      await writePng(join(dir, `${r.method}-std.png`), sliceOf(r.uncertainty, mid));
    }
    await writePng(join(dir, `${r.method}.png`), sliceOf(r.volume, mid), { min, max });
  }
}

export function metricsTable(result: ReconResult): string {
  const rows = result.results.map((r) => [
    r.method,
    r.metrics ? r.metrics.psnr.toFixed(2) : "-",
    r.metrics ? r.metrics.ssim.toFixed(4) : "-",
    r.metrics ? r.metrics.nmse.toExponential(3) : "-",
    r.seconds.toFixed(2),
  ]);
  const head = ["method", "PSNR dB", "SSIM", "NMSE", "seconds"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

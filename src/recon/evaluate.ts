/**
 * Benchmark tables: methods x settings over a set of ground-truth volumes, through the one
 * pipeline. Each cell is the mean and standard deviation over slices of PSNR, SSIM (Wang), NMSE
 * and seconds per slice; each row also keeps the per-image numbers, named by the inputs' labels.
 */
import type { Volume } from "../image/volume.js";
import { summarise, type MeanStd } from "../metrics/index.js";
import { normalise, PSEUDO_CT, toAttenuation } from "../prior/data.js";
import { defaultDetectors, type Acquisition, type Modality } from "./acquisition.js";
import type { MethodRequest } from "./methods.js";
import { reconstruct, type ProgressEvent } from "./reconstruct.js";

export interface Setting {
  name: string;
  modality: Modality;
  /** Builds the acquisition for an image of this size. */
  acquisition(rows: number, cols: number): Acquisition;
}

/** The field's standard settings: MRI 4x (centre 0.08) and 8x (0.04), CT 23 and 60 views. */
export const STANDARD_SETTINGS: readonly Setting[] = [
  ...(
    [
      [4, 0.08],
      [8, 0.04],
    ] as const
  ).map(([r, cf]) => ({
    name: `mri-${r}x`,
    modality: "mri" as const,
    acquisition: (rows: number, cols: number): Acquisition => ({
      modality: "mri",
      rows,
      cols,
      mask: { kind: "random", acceleration: r, centerFraction: cf, seed: 0 },
      noiseSigma: 0,
    }),
  })),
  ...[23, 60].map((views) => ({
    name: `ct-${views}-views`,
    modality: "ct" as const,
    acquisition: (rows: number): Acquisition => ({
      modality: "ct",
      size: rows,
      views,
      detectors: defaultDetectors(rows),
      noise: { kind: "none" },
    }),
  })),
];

/** A ground-truth volume and a label for each of its slices (e.g. `ch2.nii.gz slice 84`). */
export interface EvalInput {
  volume: Volume;
  labels: string[];
}

export interface EvalImage {
  image: string;
  psnr: number;
  ssim: number;
  nmse: number;
  seconds: number;
}

export interface EvalRow {
  setting: string;
  method: string;
  slices: number;
  psnr: [number, number];
  ssim: [number, number];
  nmse: [number, number];
  seconds: [number, number];
  images: EvalImage[];
}

export async function evaluate(
  inputs: EvalInput[],
  settings: readonly Setting[],
  methodsFor: (acq: Acquisition) => MethodRequest[],
  onProgress?: (setting: string, e: ProgressEvent) => void,
): Promise<EvalRow[]> {
  const rows: EvalRow[] = [];
  for (const setting of settings) {
    const mine = inputs.filter(({ volume: v }) =>
      setting.modality === "mri" ? v.modality !== "CT" : v.modality === "CT",
    );
    const perMethod = new Map<string, EvalImage[]>();
    for (const { volume, labels } of mine) {
      const acquisition = setting.acquisition(volume.rows, volume.cols);
      const methods = methodsFor(acquisition);
      if (methods.length === 0) continue;
      const r = await reconstruct({
        acquisition,
        methods,
        volume,
        onProgress: (e) => onProgress?.(setting.name, e),
      });
      for (const m of r.results) {
        const images = perMethod.get(m.method) ?? [];
        for (const { slice, psnr, ssim, nmse, seconds } of m.perSlice ?? [])
          images.push({ image: labels[slice], psnr, ssim, nmse, seconds });
        perMethod.set(m.method, images);
      }
    }
    for (const [method, images] of perMethod) {
      const s = summarise(images);
      const stat = (m: MeanStd | undefined): [number, number] => [m?.mean ?? NaN, m?.std ?? NaN];
      rows.push({
        setting: setting.name,
        method,
        slices: images.length,
        psnr: stat(s.psnr),
        ssim: stat(s.ssim),
        nmse: stat(s.nmse),
        seconds: stat(s.seconds),
        images,
      });
    }
  }
  return rows;
}

/**
 * An MRI ground truth as a CT one (`--ct-from-mri`): normalised by its 99.5th percentile and mapped
 * to HU by the fixed curve PSEUDO_CT — real anatomy at attenuation contrasts, not real CT.
 */
export function pseudoCt(v: Volume): Volume {
  const data = normalise(v.data, { kind: "percentile", percentile: 99.5 });
  toAttenuation(data, PSEUDO_CT);
  return { ...v, data: data.map((u) => u * 2000 - 1000), modality: "CT", units: "HU", dicom: undefined };
}

/** An MR/other ground truth, and the same as pseudo-CT (its labels marked) for the CT settings. */
export function withPseudoCt(input: EvalInput): EvalInput[] {
  if (input.volume.modality === "CT") return [input];
  return [input, { volume: pseudoCt(input.volume), labels: input.labels.map((l) => `${l} (pseudo-CT)`) }];
}

/** Per-image tables, one per setting: a row per image, PSNR / SSIM per method. */
export function perImageMarkdown(rows: EvalRow[]): string {
  const tables: string[] = [];
  for (const setting of new Set(rows.map((r) => r.setting))) {
    const mine = rows.filter((r) => r.setting === setting);
    const lines = [
      `| ${setting} | ${mine.map((r) => `${r.method} PSNR / SSIM`).join(" | ")} |`,
      `| --- | ${mine.map(() => "---").join(" | ")} |`,
    ];
    for (const { image } of mine[0].images) {
      const cells = mine.map((r) => {
        const i = r.images.find((x) => x.image === image);
        return i ? `${i.psnr.toFixed(2)} / ${i.ssim.toFixed(3)}` : "";
      });
      lines.push(`| ${image} | ${cells.join(" | ")} |`);
    }
    tables.push(lines.join("\n"));
  }
  return tables.join("\n\n");
}

export function evalMarkdown(rows: EvalRow[]): string {
  const f = ([m, s]: [number, number], d: number) => `${m.toFixed(d)} ± ${s.toFixed(d)}`;
  return [
    "| setting | method | slices | PSNR dB | SSIM | NMSE | seconds/slice |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.setting} | ${r.method} | ${r.slices} | ${f(r.psnr, 2)} | ${f(r.ssim, 4)} | ${f(r.nmse, 4)} | ${f(r.seconds, 2)} |`,
    ),
  ].join("\n");
}

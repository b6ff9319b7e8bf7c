/**
 * What the API sends about jobs and studies: the JSON shapes, declared as zod schemas (the API
 * document's components), and the functions that make them from the records. Each function's
 * result is checked against its schema's type when it compiles.
 */
import { z } from "zod";
import { describeAcquisition } from "../src/recon/acquisition.js";
import { named, Uuid } from "./api-schemas.js";
import { summarise } from "../src/metrics/index.js";
import type { JobRecord } from "./job-record.js";

const count = z.number().int().min(0);
const window = z.object({ center: z.number(), width: z.number() });
const problem = z.object({ code: z.string(), message: z.string() });

export const SeriesView = named(
  "Series",
  z.object({
    id: Uuid,
    description: z.string(),
    modality: z.enum(["MR", "CT", "OT"]),
    units: z.enum(["HU", "arbitrary"]),
    rows: count,
    cols: count,
    slices: count,
    spacing: z.array(z.number()).readonly().meta({ description: "mm: column, row, slice" }),
    window: window.meta({ description: "default display window in the series' units" }),
  }),
);

export const StudyView = named(
  "Study",
  z.object({
    id: Uuid,
    created: z.string().meta({ format: "date-time" }),
    source: z.string().meta({ description: "dicom, nifti or demo" }),
    files: count,
    series: z.array(SeriesView),
  }),
);

const pageFields = {
  total: count.meta({ description: "records in all pages" }),
  offset: count,
  limit: count,
};
export type StudyJson = z.input<typeof StudyView>;

export const StudyPage = named("StudyPage", z.object({ studies: z.array(StudyView), ...pageFields }));

const state = z.enum(["queued", "running", "done", "failed", "cancelled"]);

export const JobSummary = named(
  "JobSummary",
  z.object({
    id: Uuid,
    created: z.string().meta({ format: "date-time" }),
    study: Uuid,
    series: Uuid,
    state,
    methods: z.array(z.string()),
    slices: z.tuple([count, count]).meta({ description: "[start, end), zero-based" }),
    progress: z.number().min(0).max(1).meta({ description: "over all methods and slices" }),
    error: problem.optional().meta({
      description:
        "why it failed or was cancelled; codes include out_of_memory and worker_died (its worker process died), interrupted (the server died under it twice) and study_deleted",
    }),
  }),
);
export const JobPage = named("JobPage", z.object({ jobs: z.array(JobSummary), ...pageFields }));

const sliceMetrics = z.object({
  slice: count,
  psnr: z.number(),
  ssim: z.number(),
  nmse: z.number(),
  seconds: z.number(),
});
export const MetricsView = named(
  "Metrics",
  z.object({
    perSlice: z.record(z.string(), z.array(sliceMetrics)).meta({ description: "per method, series order" }),
    mean: z.record(z.string(), sliceMetrics.omit({ slice: true }).extend({ slices: count })),
  }),
);

export const JobView = named(
  "Job",
  JobSummary.omit({ methods: true }).extend({
    started: z.string().nullable(),
    finished: z.string().nullable(),
    restarts: count.meta({ description: "how often a server start found it running" }),
    modality: z.enum(["mri", "ct"]),
    acquisition: z.unknown().meta({ description: "the MRI mask and noise, or the CT geometry and noise" }),
    description: z.string().meta({ description: "the acquisition in words" }),
    methods: z.array(z.object({ name: z.string(), params: z.record(z.string(), z.unknown()) })),
    perMethod: z.record(
      z.string(),
      z.object({
        done: count,
        total: count,
        current: z.object({ slice: count, done: count, total: count }).optional(),
      }),
    ),
    seconds: z.record(z.string(), z.number()).meta({ description: "per method, summed over slices" }),
    metrics: MetricsView,
  }),
);

export function jobSummary(j: JobRecord): z.input<typeof JobSummary> {
  const total = Object.values(j.progress).reduce((s, p) => s + p.total, 0);
  const done = Object.values(j.progress).reduce((s, p) => s + p.done, 0);
  return {
    id: j.id,
    created: j.created,
    study: j.study,
    series: j.plan.seriesId,
    state: j.state,
    methods: j.plan.methods.map((m) => m.name),
    slices: j.plan.slices,
    progress: total ? done / total : 0,
    ...(j.error ? { error: j.error } : {}),
  };
}

export function jobView(j: JobRecord): z.input<typeof JobView> {
  return {
    ...jobSummary(j),
    started: j.started ?? null,
    finished: j.finished ?? null,
    restarts: j.restarts,
    modality: j.plan.modality,
    acquisition: j.plan.acquisition,
    description: describeAcquisition(j.plan.acquisition),
    methods: j.plan.methods,
    perMethod: j.progress,
    seconds: j.seconds,
    metrics: metricsView(j),
  };
}

export function metricsView(j: JobRecord): z.input<typeof MetricsView> {
  const mean = Object.fromEntries(
    Object.entries(j.metrics)
      .filter(([, rows]) => rows.length)
      .map(([method, rows]) => {
        const s = summarise(rows);
        const seconds = s.seconds?.mean ?? NaN;
        return [
          method,
          { psnr: s.psnr.mean, ssim: s.ssim.mean, nmse: s.nmse.mean, seconds, slices: s.slices },
        ];
      }),
  );
  return { perSlice: j.metrics, mean };
}

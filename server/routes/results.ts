/** A job's results: finished slices, their difference from the ground truth, and downloads. */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Request, Response } from "express";
import yazl from "yazl";
import { z } from "zod";
import { sliceOf, type Volume } from "../../src/image/volume.js";
import { writeDicomSeries } from "../../src/io/dicom-write.js";
import { encodeNifti1 } from "../../src/io/nifti.js";
import { describeDerivation } from "../../src/recon/methods.js";
import { HttpError, notFound } from "../http/errors.js";
import { sendSlice, SliceQuery, sliceIndex } from "../http/slices.js";
import type { JobRecord } from "../job-record.js";
import type { JobService } from "../jobs.js";
import { choice } from "../paging.js";
import { SlicePixelsSchema } from "../pixels.js";
import { defaultWindow, type Storage } from "../storage.js";
import { findJob } from "./jobs.js";
import { route, type ApiContext } from "./route.js";

const DownloadQuery = z.object({
  format: choice(["nifti", "dicom"]).meta({
    description: "NIfTI (.nii.gz) or a derived DICOM series (.zip)",
  }),
});

export function resultRoutes({ storage, jobs, encoded }: ApiContext) {
  return [
    route({
      method: "get",
      path: "/api/jobs/:id/results/:method/slices/:n",
      summary: "One finished slice of a method's result (method-std: the uncertainty map)",
      query: SliceQuery,
      ok: { 200: SlicePixelsSchema },
      errors: [400, 404],
      handle: (req, res, { format }) => {
        const { job, method, image, series } = resultSlice(jobs, storage, req);
        // The window of a -std map is its own once the job is done.
        sendSlice(req, res, encoded, format, () => [image(), series, windowFor(storage, job, method)], {
          variant: job.state,
          immutable: job.state === "done",
        });
      },
    }),
    route({
      method: "get",
      path: "/api/jobs/:id/results/:method/error/slices/:n",
      summary: "Signed difference result - ground truth of one slice",
      query: SliceQuery,
      ok: { 200: SlicePixelsSchema },
      errors: [400, 404],
      handle: (req, res, { format }) => {
        const { job, n, image, series } = resultSlice(jobs, storage, req);
        const difference = (): [Float32Array, Volume, { center: number; width: number }] => {
          const truth = sliceOf(series, n).data;
          const diff = image().map((v, i) => v - truth[i]);
          let m = 0;
          for (const d of diff) m = Math.max(m, Math.abs(d));
          return [diff, series, { center: 0, width: 2 * m || 1 }];
        };
        sendSlice(req, res, encoded, format, difference, {
          variant: job.state,
          immutable: job.state === "done",
        });
      },
    }),
    route({
      method: "get",
      path: "/api/jobs/:id/results/:method/download",
      summary: "A finished method's volume as NIfTI (.nii.gz) or a derived DICOM series (.zip)",
      query: DownloadQuery,
      ok: { 200: { description: "the file", content: ["application/gzip", "application/zip"] } },
      errors: [400, 404],
      handle: async (req, res, { format }) => {
        const job = findJob(jobs, String(req.params.id));
        const method = jobMethod(job, String(req.params.method));
        // A method's volume is stored once all its slices are done (also when another method failed).
        const v = storage.result(job.id, method);
        if (!v) throw notFound("result", method);
        if (format === "dicom") return sendDicomZip(res, v, method, job);
        res
          .type("application/gzip")
          .attachment(`${method}.nii.gz`)
          .send(Buffer.from(encodeNifti1(v, true)));
      },
    }),
  ];
}

/** A method of the job (or its `-std` map): the only names that reach the results folder. */
function jobMethod(job: JobRecord, method: string): string {
  if (!job.plan.methods.some((m) => m.name === method || `${m.name}-std` === method))
    throw notFound("method", method);
  return method;
}

function resultSlice(jobs: JobService, storage: Storage, req: Request) {
  const job = findJob(jobs, String(req.params.id));
  const method = jobMethod(job, String(req.params.method));
  const series = storage.volume(job.study, job.plan.seriesId);
  if (!series) throw notFound("study", job.study);
  const n = sliceIndex(String(req.params.n), series.slices);
  // Read only when its answer is not encoded already.
  const image = () => {
    const im = jobs.resultSlice(job, method, n);
    if (!im) throw new HttpError(404, `slice ${n} of ${method} is not finished`, "not_ready", "n");
    return im;
  };
  return { job, method, n, image, series };
}

function windowFor(storage: Storage, job: JobRecord, method: string) {
  const std = method.endsWith("-std") ? storage.result(job.id, method) : undefined;
  if (std) return defaultWindow(std);
  return (
    storage.study(job.study)?.series.find((s) => s.id === job.plan.seriesId)?.window ?? {
      center: 0,
      width: 1,
    }
  );
}

async function sendDicomZip(res: Response, v: Volume, method: string, job: JobRecord): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "scorerecon-dicom-"));
  try {
    const request = job.plan.methods.find((m) => m.name === method) ?? { name: method, params: {} };
    await writeDicomSeries(dir, v, {
      description: `scorerecon ${method}`,
      derivation: describeDerivation(request, job.plan.acquisition),
    });
    const zip = new yazl.ZipFile();
    for (const f of readdirSync(dir).sort()) zip.addFile(join(dir, f), `${method}/${f}`);
    zip.end();
    res.type("application/zip").attachment(`${method}-dicom.zip`);
    await new Promise<void>((resolve, reject) => {
      zip.outputStream.pipe(res).on("finish", resolve).on("error", reject);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

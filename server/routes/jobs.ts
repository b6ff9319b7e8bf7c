/** Jobs: create (rate-limited), list, one, cancel, their events (SSE) and metrics. */
import type { z } from "zod";
import { named } from "../api-schemas.js";
import { HttpError, notFound } from "../http/errors.js";
import { streamEvents } from "../http/sse.js";
import { jobRateLimit } from "../http/middleware.js";
import { FINAL_STATES, type JobEvent, type JobRecord } from "../job-record.js";
import type { JobService } from "../jobs.js";
import { modelDir } from "../models.js";
import { page, PageQuery } from "../paging.js";
import { JobSpecSchema, resolveJobSpec } from "../spec.js";
import { UUID } from "../storage.js";
import { JobPage, JobView, jobSummary, jobView, metricsView, MetricsView } from "../views.js";
import { route, type ApiContext } from "./route.js";

/** The body of POST /api/jobs, as server/spec.ts checks it. */
const JobSpec = named("JobSpec", JobSpecSchema);

export function findJob(jobs: JobService, id: string): JobRecord {
  const j = UUID.test(id) ? jobs.get(id) : undefined;
  if (!j) throw notFound("job", id);
  return j;
}

export function jobRoutes({ storage, jobs, jobRateLimit: perMinute }: ApiContext) {
  return [
    route({
      method: "post",
      path: "/api/jobs",
      summary: "Start a reconstruction job: the job as GET /api/jobs/{id} gives it",
      body: { schema: JobSpec, type: "application/json" },
      before: [jobRateLimit(perMinute)],
      ok: { 201: JobView },
      errors: [400, 404, 413, 415, 429],
      handle: async (req, res) => {
        const plan = resolveJobSpec(
          req.body,
          (id) => storage.study(id),
          (name) => modelDir(storage.root, name),
        );
        res.status(201).json(jobView(await jobs.create(plan.spec.study, plan)));
      },
    }),
    route({
      method: "get",
      path: "/api/jobs",
      summary:
        "List jobs, a page at a time: the newest `limit` after skipping the `offset` newest, oldest first",
      query: PageQuery,
      ok: { 200: JobPage },
      errors: [400],
      handle: (_req, res, query) => {
        const { items, ...rest } = page(jobs.list(), query);
        res.json({ jobs: items.map(jobSummary), ...rest } satisfies z.input<typeof JobPage>);
      },
    }),
    route({
      method: "get",
      path: "/api/jobs/:id",
      summary: "A job: state, progress per method and slice, timings, metrics so far",
      ok: { 200: JobView },
      errors: [404],
      handle: (req, res) => void res.json(jobView(findJob(jobs, String(req.params.id)))),
    }),
    route({
      method: "delete",
      path: "/api/jobs/:id",
      summary: "Cancel a job",
      ok: { 202: { description: "{id, state: cancelling}", content: ["application/json"] } },
      errors: [404, 409],
      handle: (req, res) => {
        const job = findJob(jobs, String(req.params.id));
        if (jobs.isFinal(job))
          throw new HttpError(409, `job ${job.id} is already ${job.state}`, "job_finished", "id");
        jobs.cancel(job.id);
        res.status(202).json({ id: job.id, state: "cancelling" });
      },
    }),
    route({
      method: "get",
      path: "/api/jobs/:id/events",
      summary: "Server-Sent Events: snapshot, then progress, slice and state events until the job ends",
      ok: { 200: { description: "an event stream", content: ["text/event-stream"] } },
      errors: [404],
      handle: (req, res) => {
        const job = findJob(jobs, String(req.params.id));
        streamEvents<JobEvent>(req, res, {
          snapshot: jobView(job),
          final: jobs.isFinal(job),
          events: jobs.events,
          key: job.id,
          ends: (e) => e.type === "state" && !!e.state && FINAL_STATES.includes(e.state),
        });
      },
    }),
    route({
      method: "get",
      path: "/api/jobs/:id/metrics",
      summary: "PSNR, SSIM, NMSE and seconds per slice and their means, per method",
      ok: { 200: MetricsView },
      errors: [404],
      handle: (req, res) => void res.json(metricsView(findJob(jobs, String(req.params.id)))),
    }),
  ];
}

/**
 * The reconstruction server: an Express app with the API under /api (JSON everywhere, described
 * in /api/openapi.json), jobs on a pool of worker processes, and everything kept in a data folder
 * that survives restarts. Thin by design: studies are read with src/io, jobs run src/recon.
 */
import { randomUUID, timingSafeEqual } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { rateLimit } from "express-rate-limit";
import helmet from "helmet";
import yazl from "yazl";
import { z } from "zod";
import { MASK_KINDS, realisedAcceleration, samplingMask } from "../operators/masks.js";
import { UserError } from "../src/errors.js";
import { sliceOf, type Volume } from "../src/image/volume.js";
import { writeDicomSeries } from "../src/io/dicom-write.js";
import { encodeNifti1 } from "../src/io/nifti.js";
import { packageRoot } from "../src/package-root.js";
import { ACQUISITION_DEFAULTS, describeAcquisition } from "../src/recon/acquisition.js";
import { describeDerivation } from "../src/recon/methods.js";
import { SlicePool } from "../src/recon/pool.js";
import { QueuePool } from "../src/queue/queue-pool.js";
import { RedisJobQueue } from "./redis-queue.js";
import { FINAL_STATES, JobService, type JobEvent, type JobRecord } from "./jobs.js";
import { listModels, modelDir } from "./models.js";
import { OPENAPI } from "./openapi.js";
import { page, parseQuery } from "./paging.js";
import { EncodedSlices, encodeSlice } from "./pixels.js";
import { resolveJobSpec } from "./spec.js";
import { defaultWindow, jobStore, Storage, UUID, type StudyRecord } from "./storage.js";
import { DEFAULT_LIMITS, type UploadLimits } from "./limits.js";
import { HttpError, ingestUpload, receivedUpload, uploadMiddleware } from "./uploads.js";

const MaskQuery = z.object({
  rows: z.coerce.number().int().min(8).max(1024),
  cols: z.coerce.number().int().min(8).max(1024),
  kind: z.enum(MASK_KINDS).default(ACQUISITION_DEFAULTS.mask),
  acceleration: z.coerce.number().min(1).max(64).default(ACQUISITION_DEFAULTS.acceleration),
  centerFraction: z.coerce.number().min(0).max(1).default(ACQUISITION_DEFAULTS.centerFraction),
  seed: z.coerce.number().int().min(0).default(0),
});

export interface ServerOptions {
  dataDir: string;
  /** Worker processes for reconstruction (default: the machine's cores). */
  workers?: number;
  /** Heap limit of each worker process in MiB (src/recon/pool.ts). */
  workerMemoryMb?: number;
  /** When set, every /api route needs `Authorization: Bearer <token>`. */
  token?: string;
  limits?: Partial<UploadLimits>;
  /** Job creations per client per minute. */
  jobRateLimit?: number;
  /** Redis (BullMQ): jobs wait there and their slices run on `scorerecon worker` processes. */
  redisUrl?: string;
  /** Log one line per request (method, route pattern, status, time; never names or query strings). */
  log?: (line: string) => void;
}

export interface ScoreReconServer {
  app: express.Express;
  storage: Storage;
  jobs: JobService;
  /** Resolves once jobs left by a previous run are re-queued. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** Memory for encoded slice answers (server/pixels.ts): some 180 int16 slices of 512 x 512. */
const ENCODED_SLICES_BYTES = 64 * 2 ** 20;

export function createServer(o: ServerOptions): ScoreReconServer {
  const storage = new Storage(o.dataDir);
  const workers = Math.max(1, o.workers ?? availableParallelism());
  const pool = o.redisUrl ? undefined : new SlicePool(workers, { memoryMb: o.workerMemoryMb });
  const redisUrl = o.redisUrl;
  const jobs = redisUrl
    ? new JobService(
        storage,
        (id) => new QueuePool(redisUrl, o.dataDir, jobStore(id), 64, id),
        workers,
        (run, cancelled) => new RedisJobQueue(redisUrl, workers, run, cancelled),
      )
    : new JobService(storage, pool!, workers);
  const limits = { ...DEFAULT_LIMITS, ...o.limits };
  const encoded = new EncodedSlices(ENCODED_SLICES_BYTES);
  let isReady = false;
  const ready = jobs.recover().then(() => void (isReady = true));
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  app.use(helmet());
  app.use((req, res, next) => {
    const t0 = performance.now();
    res.on("finish", () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : "(no route)";
      o.log?.(`${req.method} ${route} ${res.statusCode} ${(performance.now() - t0).toFixed(0)}ms`);
    });
    next();
  });

  app.get("/healthz", (_req, res) => void res.json({ ok: true }));
  app.get("/readyz", (_req, res) => void res.status(isReady ? 200 : 503).json({ ready: isReady }));

  const api = express.Router();
  if (o.token) api.use(bearerAuth(o.token));
  api.use(express.json({ limit: "1mb" }));

  api.get("/openapi.json", (_req, res) => void res.json(OPENAPI));

  // Studies.
  api.post("/studies", uploadMiddleware(storage, limits), async (req, res) => {
    const modality = typeof req.body?.modality === "string" ? req.body.modality : undefined;
    res.status(201).json(await ingestUpload(storage, receivedUpload(req), limits, modality));
  });
  api.get("/studies", (req, res) => {
    const { items, ...rest } = page(storage.studies(), req.query);
    res.json({ studies: items, ...rest });
  });
  api.get("/studies/:id", (req, res) => void res.json(findStudy(storage, req.params.id)));
  // Its jobs are stopped and their results removed first: nothing keeps running for a study that is gone.
  api.delete("/studies/:id", async (req, res) => {
    findStudy(storage, req.params.id);
    await jobs.removeStudyJobs(req.params.id);
    storage.deleteStudy(req.params.id);
    res.status(204).end();
  });
  api.get("/studies/:id/series/:sid/slices/:n", (req, res) => {
    const study = findStudy(storage, req.params.id);
    const info = study.series.find((s) => s.id === req.params.sid);
    const v = info && storage.volume(study.id, info.id);
    if (!info || !v) throw notFound("series", req.params.sid);
    const n = sliceIndex(req.params.n, v.slices);
    sendSlice(req, res, encoded, () => [sliceOf(v, n).data, v, info.window], { immutable: true });
  });

  // Jobs.
  const jobLimiter = rateLimit({
    windowMs: 60_000,
    limit: o.jobRateLimit ?? 60,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    handler: (_req, res) =>
      void res
        .status(429)
        .json({ error: { code: "rate_limited", message: "too many jobs created; try again in a minute" } }),
  });
  api.post("/jobs", jobLimiter, async (req, res) => {
    const plan = resolveJobSpec(
      req.body,
      (id) => storage.study(id),
      (name) => modelDir(storage.root, name),
    );
    res.status(201).json(await jobs.create(plan.spec.study, plan));
  });
  api.get("/jobs", (req, res) => {
    const { items, ...rest } = page(jobs.list(), req.query);
    res.json({ jobs: items.map(jobSummary), ...rest });
  });
  api.get("/jobs/:id", (req, res) => void res.json(jobView(findJob(jobs, req.params.id))));
  api.delete("/jobs/:id", (req, res) => {
    const job = findJob(jobs, req.params.id);
    if (jobs.isFinal(job))
      throw new HttpError(409, `job ${job.id} is already ${job.state}`, "job_finished", "id");
    jobs.cancel(job.id);
    res.status(202).json({ id: job.id, state: "cancelling" });
  });
  api.get("/jobs/:id/events", (req, res) => streamEvents(jobs, findJob(jobs, req.params.id), req, res));
  api.get("/jobs/:id/metrics", (req, res) => void res.json(metricsView(findJob(jobs, req.params.id))));
  api.get("/jobs/:id/results/:method/slices/:n", (req, res) => {
    const { job, method, image, series } = resultSlice(jobs, storage, req);
    // The window of a -std map is its own once the job is done.
    sendSlice(req, res, encoded, () => [image(), series, windowFor(storage, job, method)], {
      variant: job.state,
      immutable: job.state === "done",
    });
  });
  api.get("/jobs/:id/results/:method/error/slices/:n", (req, res) => {
    const { job, n, image, series } = resultSlice(jobs, storage, req);
    sendSlice(
      req,
      res,
      encoded,
      () => {
        const truth = sliceOf(series, n).data;
        const diff = image().map((v, i) => v - truth[i]);
        let m = 0;
        for (const d of diff) m = Math.max(m, Math.abs(d));
        return [diff, series, { center: 0, width: 2 * m || 1 }];
      },
      { variant: job.state, immutable: job.state === "done" },
    );
  });
  api.get("/jobs/:id/results/:method/download", async (req, res) => {
    const job = findJob(jobs, req.params.id);
    const method = jobMethod(job, String(req.params.method));
    // A method's volume is stored once all its slices are done (also when another method failed).
    const v = storage.result(job.id, method);
    if (!v) throw notFound("result", method);
    const format = String(req.query.format ?? "nifti");
    if (format === "nifti") {
      res
        .type("application/gzip")
        .attachment(`${method}.nii.gz`)
        .send(Buffer.from(encodeNifti1(v, true)));
      return;
    }
    if (format !== "dicom")
      throw new UserError(`format: must be nifti or dicom, got '${format}'`, "bad_request", "format");
    await sendDicomZip(res, v, method, job);
  });

  api.get("/models", (_req, res) => void res.json({ models: listModels(storage.root) }));
  // The sampling mask a job would use, for the job form's live picture (operators/masks.ts).
  api.get("/masks", (req, res) => {
    const { rows, cols, kind, acceleration, centerFraction, seed } = parseQuery(MaskQuery, req.query);
    const mask = samplingMask(rows, cols, { kind, acceleration, centerFraction, seed });
    res.json({
      rows,
      cols,
      acceleration: realisedAcceleration(mask),
      mask: Buffer.from(mask).toString("base64"),
    });
  });

  api.use((_req, _res, next) => next(new HttpError(404, "no such API route", "not_found")));
  app.use("/api", api);

  const viewer = join(packageRoot(), "viewer", "dist");
  if (existsSync(viewer)) app.use(express.static(viewer));
  else
    app.get(
      "/",
      (_req, res) => void res.type("text/plain").send("scorerecon server: the API is under /api\n"),
    );

  app.use(errorHandler(o.log));
  return {
    app,
    storage,
    jobs,
    ready,
    async close() {
      await jobs.close();
      await pool?.close();
    },
  };
}

/** Listens and resolves with the server once bound. */
export function listen(s: ScoreReconServer, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = s.app.listen(port, host, () => resolve(server));
    server.on("error", reject);
  });
}

function bearerAuth(token: string) {
  const expected = Buffer.from(token);
  return (req: Request, _res: Response, next: NextFunction) => {
    // The scheme is case-insensitive, then one or more spaces (RFC 7235 2.1, RFC 6750 2.1).
    const given = Buffer.from(/^bearer +(.+?) *$/i.exec(req.get("authorization") ?? "")?.[1] ?? "");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
    next(
      new HttpError(401, "a valid bearer token is required (Authorization: Bearer <token>)", "unauthorized"),
    );
  };
}

const notFound = (what: string, id: string) =>
  new HttpError(404, `no ${what} ${/^[\w.-]{1,64}$/.test(id) ? id : "with that id"}`, "not_found", what);

function findStudy(storage: Storage, id: string): StudyRecord {
  const s = UUID.test(id) ? storage.study(id) : undefined;
  if (!s) throw notFound("study", id);
  return s;
}

function findJob(jobs: JobService, id: string): JobRecord {
  const j = UUID.test(id) ? jobs.get(id) : undefined;
  if (!j) throw notFound("job", id);
  return j;
}

function sliceIndex(text: string, slices: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n >= slices)
    throw new HttpError(
      404,
      `no slice ${/^\d{1,9}$/.test(text) ? n : ""} (0..${slices - 1})`.trim(),
      "not_found",
      "n",
    );
  return n;
}

/**
 * A slice's pixels as JSON, kept in `cache` (by URL, format and `variant`), so `compute` runs once
 * per slice. Slices of a study and of a done job never change: `immutable`, the client keeps them.
 * Those of a job not done may (a `-std` map's window is its own only once the job is done): the
 * client revalidates them by their ETag.
 */
function sendSlice(
  req: Request,
  res: Response,
  cache: EncodedSlices,
  compute: () => [Float32Array, Volume, { center: number; width: number }],
  { variant = "", immutable }: { variant?: string; immutable: boolean },
): void {
  const format = String(req.query.format ?? "int16");
  if (format !== "int16" && format !== "float32")
    throw new UserError(`format: must be int16 or float32, got '${format}'`, "bad_request", "format");
  const { body, etag } = cache.get(`${req.baseUrl}${req.path}?${format}&${variant}`, () => {
    const [data, v, window] = compute();
    const pixels = encodeSlice(data, v.rows, v.cols, {
      dtype: format,
      window,
      units: v.units,
      spacing: v.spacing,
    });
    return Buffer.from(JSON.stringify(pixels));
  });
  res.set({
    "Cache-Control": immutable ? "private, max-age=31536000, immutable" : "private, no-cache",
    ETag: etag,
  });
  res.type("application/json").send(body);
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

function jobSummary(j: JobRecord) {
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

function jobView(j: JobRecord) {
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

function metricsView(j: JobRecord) {
  const mean = Object.fromEntries(
    Object.entries(j.metrics)
      .filter(([, rows]) => rows.length)
      .map(([method, rows]) => {
        const avg = (k: "psnr" | "ssim" | "nmse" | "seconds") =>
          rows.reduce((s, r) => s + r[k], 0) / rows.length;
        return [
          method,
          {
            psnr: avg("psnr"),
            ssim: avg("ssim"),
            nmse: avg("nmse"),
            seconds: avg("seconds"),
            slices: rows.length,
          },
        ];
      }),
  );
  return { perSlice: j.metrics, mean };
}

function streamEvents(jobs: JobService, job: JobRecord, req: Request, res: Response): void {
  res.set({
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.flushHeaders();
  let id = 0;
  const send = (type: string, data: unknown) =>
    res.write(`id: ${++id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  send("snapshot", jobView(job));
  if (jobs.isFinal(job)) return void res.end();
  const onEvent = (e: JobEvent) => {
    send(e.type, e);
    if (e.type === "state" && e.state && FINAL_STATES.includes(e.state)) stop();
  };
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  const stop = () => {
    clearInterval(heartbeat);
    jobs.events.off(job.id, onEvent);
    res.end();
  };
  jobs.events.on(job.id, onEvent);
  req.on("close", stop);
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

/**
 * Errors of the request itself that Express and body-parser raise (http-errors with a 4xx status):
 * answered with their status, never as internal. Messages are ours: theirs can quote the input.
 */
function requestErrors(e: {
  type?: string;
  status?: number;
  charset?: string;
  encoding?: string;
}): { status: number; code: string; message: string } | undefined {
  if (!e || typeof e.status !== "number" || e.status < 400 || e.status > 499) return undefined;
  const quoted = (v: string | undefined) => JSON.stringify(String(v ?? "").slice(0, 40));
  switch (e.type) {
    case "entity.parse.failed":
      return { status: 400, code: "bad_json", message: "the request body is not valid JSON" };
    case "entity.too.large":
      return { status: 413, code: "too_large", message: "the request body is too large" };
    case "charset.unsupported":
      return {
        status: 415,
        code: "unsupported_charset",
        message: `the request body's charset ${quoted(e.charset)} is not supported (JSON is UTF-8)`,
      };
    case "encoding.unsupported":
      return {
        status: 415,
        code: "unsupported_encoding",
        message: `the request body's Content-Encoding ${quoted(e.encoding)} is not supported`,
      };
  }
  // The router's decodeURIComponent of a path parameter (Express 5: a 400 URIError).
  if (e instanceof URIError || e.status === 400)
    return { status: 400, code: "bad_path", message: "the URL path holds malformed percent-encoding" };
  return { status: e.status, code: "bad_request", message: "the request cannot be processed" };
}

function errorHandler(log?: (line: string) => void) {
  return (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    void next;
    if (err instanceof HttpError)
      return void res
        .status(err.status)
        .json({ error: { code: err.code, message: err.message, field: err.field } });
    if (err instanceof UserError)
      return void res
        .status(err.code === "not_found" ? 404 : err.code === "too_large" ? 413 : 400)
        .json({ error: { code: err.code, message: err.message, field: err.field } });
    const e = err as { type?: string; status?: number; charset?: string; encoding?: string };
    const known = requestErrors(e);
    if (known)
      return void res.status(known.status).json({ error: { code: known.code, message: known.message } });
    const id = randomUUID().slice(0, 8);
    log?.(`internal error ${id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    res.status(500).json({ error: { code: "internal", message: `internal error (error id ${id})` } });
  };
}

/**
 * The reconstruction server: an Express app with the API under /api (JSON everywhere, described
 * in /api/openapi.json), jobs on a pool of worker processes, and everything kept in a data folder
 * that survives restarts. Thin by design: studies are read with src/io, jobs run src/recon. The
 * routes are declared by resource in server/routes; this file composes them.
 */
import { existsSync } from "node:fs";
import type { Server } from "node:http";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import express from "express";
import { packageRoot } from "../src/package-root.js";
import { SlicePool } from "../src/recon/pool.js";
import { QueuePool } from "../src/queue/queue-pool.js";
import { TrainQueue } from "../src/queue/train-queue.js";
import { runTrainTask } from "../src/queue/train-task.js";
import { bearerAuth } from "./http/auth.js";
import { errorHandler, HttpError } from "./http/errors.js";
import { requestLog, secure } from "./http/middleware.js";
import { JobService } from "./jobs.js";
import { TrainingService, type TrainRunner } from "./trainings.js";
import { DEFAULT_LIMITS, type UploadLimits } from "./limits.js";
import { withDocument } from "./openapi.js";
import { EncodedSlices } from "./pixels.js";
import { RedisJobQueue } from "./redis-queue.js";
import { jobRoutes } from "./routes/jobs.js";
import { metaRoutes } from "./routes/meta.js";
import { modelRoutes } from "./routes/models.js";
import { resultRoutes } from "./routes/results.js";
import { register, route, type ApiContext, type Route } from "./routes/route.js";
import { studyRoutes } from "./routes/studies.js";
import { jobStore, Storage } from "./storage.js";

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
  trainings: TrainingService;
  /** Every route, as registered and documented. */
  routes: readonly Route[];
  /** Resolves once jobs left by a previous run are re-queued. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** Memory for encoded slice answers (server/pixels.ts): some 180 int16 slices of 512 x 512. */
const ENCODED_SLICES_BYTES = 64 * 2 ** 20;

const VIEWER = join(packageRoot(), "viewer", "dist");

/** GET /: the viewer's page, or where it is not built a line saying where the API is. */
const viewerRoute = () =>
  route({
    method: "get",
    path: "/",
    summary: "The viewer (viewer/dist); where it is not built, a line saying the API is under /api",
    ok: { 200: { description: "the viewer's page", content: ["text/html", "text/plain"] } },
    handle: (_req, res) =>
      existsSync(VIEWER)
        ? res.sendFile(join(VIEWER, "index.html"))
        : void res.type("text/plain").send("scorerecon server: the API is under /api\n"),
  });

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
  // Trainings: one at a time, in a process of their own, or as a task on a queue worker.
  const trainQueue = redisUrl ? new TrainQueue(redisUrl) : undefined;
  const runTraining: TrainRunner = trainQueue
    ? (id, task, onEvent, signal) => trainQueue.run(id, task, onEvent, signal)
    : (_id, task, onEvent, signal) => runTrainTask(task, o.dataDir, onEvent, signal);
  const trainings = new TrainingService(o.dataDir, runTraining);
  let isReady = false;
  const ready = Promise.all([jobs.recover(), trainings.recover()]).then(() => void (isReady = true));
  const context: ApiContext = {
    storage,
    jobs,
    trainings,
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    encoded: new EncodedSlices(ENCODED_SLICES_BYTES),
    jobRateLimit: o.jobRateLimit ?? 60,
  };
  const routes = withDocument([
    ...studyRoutes(context),
    ...jobRoutes(context),
    ...resultRoutes(context),
    ...modelRoutes(context),
    ...metaRoutes(() => isReady),
    viewerRoute(),
  ]);

  const app = express();
  secure(app);
  app.use(requestLog(o.log));
  const api = express.Router();
  if (o.token) api.use(bearerAuth(o.token));
  api.use(express.json({ limit: "1mb" }));
  register(app, api, routes);
  api.use((_req, _res, next) => next(new HttpError(404, "no such API route", "not_found")));
  app.use("/api", api);

  if (existsSync(VIEWER)) app.use(express.static(VIEWER));
  app.use(errorHandler(o.log));
  return {
    app,
    storage,
    jobs,
    trainings,
    routes,
    ready,
    async close() {
      await Promise.all([jobs.close(), trainings.close()]);
      await Promise.all([pool?.close(), trainQueue?.close()]);
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

/**
 * Priors as a resource: the list a job names its `model` from, trainings of new ones (POST: train
 * or fine-tune on stored studies, server/trainings.ts), one prior or training, its events (SSE),
 * its latest sample grid, and DELETE (cancel a training; delete a user prior).
 */
import { z } from "zod";
import { named } from "../api-schemas.js";
import { HttpError, notFound } from "../http/errors.js";
import { streamEvents } from "../http/sse.js";
import { jobRateLimit } from "../http/middleware.js";
import { findModel, isShipped, listModels } from "../models.js";
import {
  FINAL_TRAINING_STATES,
  isFinalTraining,
  trainingView,
  type TrainingEvent,
  type TrainingRecord,
} from "../training-record.js";
import { resolveTrainingSpec, TrainingSpecSchema } from "../training-spec.js";
import { checkpointFolder } from "../trainings.js";
import { route, type ApiContext } from "./route.js";

const ModelList = named(
  "ModelList",
  z.object({
    models: z.array(
      z.object({
        name: z.string().meta({ description: "what a job's `model` names" }),
        shipped: z.boolean(),
        prior: z.unknown().meta({ description: "its prior.json: modality, image size, training, ..." }),
      }),
    ),
  }),
);

const TrainingSpec = named("TrainingSpec", TrainingSpecSchema);

const STATES = ["queued", "training", "ready", "failed", "cancelled"] as const;
const nullable = <T extends z.ZodType>(t: T) => t.nullable();

const ModelView = named(
  "ModelView",
  z.object({
    name: z.string(),
    state: z.enum(STATES),
    shipped: z.boolean().optional(),
    prior: z.unknown().optional().meta({ description: "its prior.json, once ready" }),
    step: z.number().int().optional(),
    steps: z.number().int().optional(),
    loss: z
      .array(z.tuple([z.number(), z.number()]))
      .optional()
      .meta({ description: "recent [step, loss]" }),
    stepsPerSecond: nullable(z.number()).optional(),
    etaSeconds: nullable(z.number()).optional(),
    checkpoint: nullable(z.number().int()).optional().meta({ description: "the last checkpoint's step" }),
    grid: nullable(z.object({ step: z.number().int(), url: z.string() })).optional(),
    created: z.string().optional(),
    started: nullable(z.string()).optional(),
    finished: nullable(z.string()).optional(),
    restarts: z.number().int().optional(),
    runs: z
      .array(z.number().int())
      .optional()
      .meta({ description: "the step each run started at (resumptions)" }),
    spec: z.unknown().optional().meta({ description: "the training's spec, as POSTed with its defaults" }),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  }),
);

/** A training's view, with its prior once ready. */
function view(storageRoot: string, r: TrainingRecord): z.input<typeof ModelView> {
  const prior =
    r.state === "ready" ? listModels(storageRoot).find((m) => !m.shipped && m.name === r.name) : undefined;
  return { ...trainingView(r), shipped: false, ...(prior ? { prior: prior.prior } : {}) };
}

export function modelRoutes({ storage, jobs, trainings, jobRateLimit: perMinute }: ApiContext) {
  const one = (name: string): z.input<typeof ModelView> => {
    const r = trainings.get(name);
    if (r) return view(storage.root, r);
    const m = listModels(storage.root).find((x) => x.name === name && (!x.shipped || !findUser(name)));
    if (!m) throw notFound("model", name);
    return { name, state: "ready", shipped: m.shipped, prior: m.prior };
  };
  const findUser = (name: string) => findModel(storage.root, name)?.shipped === false;
  const training = (name: string) => {
    const r = trainings.get(name);
    if (!r) throw notFound("training", name);
    return r;
  };
  return [
    route({
      method: "get",
      path: "/api/models",
      summary: "Shipped and user-trained priors (ready ones) with their prior.json",
      ok: { 200: ModelList },
      handle: (_req, res) =>
        void res.json({ models: listModels(storage.root) } satisfies z.input<typeof ModelList>),
    }),
    route({
      method: "post",
      path: "/api/models",
      summary:
        "Train a prior on stored studies, or fine-tune one (`init`): 202 with the training; one runs at a time",
      body: { schema: TrainingSpec, type: "application/json" },
      before: [jobRateLimit(perMinute)],
      ok: { 202: ModelView },
      errors: [400, 404, 409, 413, 415, 429],
      handle: async (req, res) => {
        const name = (req.body as { name?: unknown } | undefined)?.name;
        if (
          typeof name === "string" &&
          (isShipped(name) || findModel(storage.root, name) || trainings.get(name))
        )
          throw new HttpError(
            409,
            `name: a model named '${name}' exists${trainings.get(name) ? " (a training: DELETE it first)" : ""}`,
            "duplicate_name",
            "name",
          );
        const t = resolveTrainingSpec(
          req.body,
          checkpointFolder,
          (id) => storage.study(id),
          (n) => findModel(storage.root, n),
        );
        res.status(202).json(view(storage.root, await trainings.create(t)));
      },
    }),
    route({
      method: "get",
      path: "/api/models/:name",
      summary:
        "A prior or a training: state, step of steps, recent loss, steps/s, ETA; its prior.json once ready",
      ok: { 200: ModelView },
      errors: [404],
      handle: (req, res) => void res.json(one(String(req.params.name))),
    }),
    route({
      method: "get",
      path: "/api/models/:name/events",
      summary:
        "Server-Sent Events: snapshot, then progress, checkpoint, grid and state events until the training ends",
      ok: { 200: { description: "an event stream", content: ["text/event-stream"] } },
      errors: [404],
      handle: (req, res) => {
        const r = training(String(req.params.name));
        streamEvents<TrainingEvent>(req, res, {
          snapshot: view(storage.root, r),
          final: isFinalTraining(r),
          events: trainings.events,
          key: r.name,
          view: (e) => (e.type === "grid" ? { ...e, url: `/api/models/${r.name}/grid` } : e),
          ends: (e) => e.type === "state" && !!e.state && FINAL_TRAINING_STATES.includes(e.state),
        });
      },
    }),
    route({
      method: "get",
      path: "/api/models/:name/grid",
      summary: "Samples drawn from the training's latest checkpoint (PNG, window [0, 1])",
      ok: { 200: { description: "the sample grid", content: ["image/png"] } },
      errors: [404],
      handle: (req, res) => {
        const file = trainings.grid(training(String(req.params.name)).name);
        if (!file) throw new HttpError(404, "no sample grid yet", "not_found", "grid");
        res.type("image/png").sendFile(file);
      },
    }),
    route({
      method: "delete",
      path: "/api/models/:name",
      summary:
        "Cancel a training (202), or delete a user prior or a finished training (204); not a shipped prior (403) nor one a queued or running job or training uses (409)",
      ok: {
        202: { description: "{name, state: cancelling}", content: ["application/json"] },
        204: { description: "deleted" },
      },
      errors: [403, 404, 409],
      handle: (req, res) => {
        const name = String(req.params.name);
        const r = trainings.get(name);
        if (!r && !findUser(name)) {
          if (isShipped(name))
            throw new HttpError(
              403,
              `model ${name} is shipped with scorerecon and cannot be deleted`,
              "shipped",
              "name",
            );
          throw notFound("model", name);
        }
        if (r && !isFinalTraining(r)) {
          trainings.cancel(name);
          return void res.status(202).json({ name, state: "cancelling" });
        }
        const job = jobs.list().find((j) => !jobs.isFinal(j) && j.plan.spec.model === name);
        if (job)
          throw new HttpError(
            409,
            `model ${name} is in use by job ${job.id} (${job.state})`,
            "in_use",
            "name",
          );
        const user = trainings.list().find((t) => !isFinalTraining(t) && t.spec.init === name);
        if (user)
          throw new HttpError(
            409,
            `model ${name} is in use by training ${user.name} (${user.state})`,
            "in_use",
            "name",
          );
        trainings.remove(name);
        res.status(204).end();
      },
    }),
  ];
}

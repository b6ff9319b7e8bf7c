/**
 * The training specification of `POST /api/models`, validated with zod like a job's (every error
 * names its field), and resolved against the stored studies and the model list into a training
 * task (src/queue/train-task.ts): the series it learns from named by their place in the data
 * folder, prior.json's data described by study ids and series descriptions, never server paths.
 */
import { z } from "zod";
import { UserError } from "../src/errors.js";
import { readPriorInfo } from "../src/prior/checkpoint.js";
import { AUGMENTATIONS, parseAugmentations, type Augmentation } from "../src/prior/data.js";
import { TRAIN_RANGES as T } from "../src/prior/train.js";
import type { SdeConfig } from "../src/prior/sde.js";
import { DEFAULT_UNET, type UNetConfig } from "../src/prior/unet.js";
import type { TrainTask } from "../src/queue/train-task.js";
import { fieldOf, int, intRange } from "./spec.js";
import { seriesBase } from "./storage.js";
import type { StudyRecord } from "./study-record.js";

/** A user prior's name: what jobs give as `model`; a folder name, so nothing else. */
export const MODEL_NAME = /^[A-Za-z0-9][\w.-]{0,63}$/;

export const TrainingSpecSchema = z
  .object({
    name: z
      .string()
      .regex(MODEL_NAME, "letters, digits, '_', '-', '.' (1-64, not starting with '.', '-' or '_')"),
    modality: z.enum(["mri", "ct"]),
    studies: z.array(z.string()).min(1).max(64),
    /** Only these series of the studies (default: every series of each). */
    series: z.array(z.string()).min(1).max(256).optional(),
    /** The slices kept of every series, zero-based, end exclusive (default: all). */
    slices: z.tuple([int(0, 100_000), int(1, 100_000)]).optional(),
    steps: intRange(T.steps),
    /** Training crop size (default: the init prior's, else 48). */
    size: intRange(T.size).optional(),
    batch: intRange(T.batch).default(8),
    /** A model name from GET /api/models to fine-tune (or grow) from. */
    init: z.string().optional(),
    /** The network (default: the init prior's, else the default U-Net). */
    network: z
      .object({
        channels: intRange(T.channels).refine((c) => c % 4 === 0, "must be a multiple of 4 (GroupNorm)"),
        channelMult: z.array(intRange(T.channelMult)).min(T.levels.min).max(T.levels.max),
        attention: z.boolean().default(false),
      })
      .strict()
      .optional(),
    augment: z
      .union([z.enum(["default", "none"]), z.array(z.enum(AUGMENTATIONS)).max(16)], {
        error: `default, none, or a list of ${AUGMENTATIONS.join(", ")}`,
      })
      .default("default"),
    lr: z.number().min(T.lr.min).max(T.lr.max).default(2e-4),
    /** Steps of linear learning-rate warm-up (default: a tenth of the steps, at most 500). */
    warmup: int(0, 1_000_000).optional(),
    checkpointEvery: intRange(T.checkpointEvery).default(100),
    /** Samples in the grid drawn at each checkpoint (0: none), and the sampler's steps. */
    grid: z
      .object({ count: int(0, 16).default(4), steps: int(2, 200).default(10) })
      .strict()
      .default({ count: 4, steps: 10 }),
    seed: intRange(T.seed).default(0),
  })
  .strict();

export type TrainingSpec = z.infer<typeof TrainingSpecSchema>;

export interface ResolvedTraining {
  spec: TrainingSpec;
  task: TrainTask;
}

const bad = (field: string, message: string, code = "bad_training") =>
  new UserError(`${field}: ${message}`, code, field);

/**
 * Parses and checks a training spec. `out`: its checkpoint folder by name (relative to the data folder);
 * `model`: a model's folder by its API name, and whether it is shipped.
 */
export function resolveTrainingSpec(
  body: unknown,
  out: (name: string) => string,
  study: (id: string) => StudyRecord | undefined,
  model: (name: string) => { dir: string; shipped: boolean } | undefined,
): ResolvedTraining {
  const parsed = TrainingSpecSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(fieldOf(issue.path) || "body", issue.message);
  }
  const spec = parsed.data;
  const wanted = spec.series && new Set(spec.series);
  const data: TrainTask["data"] = [];
  const described: string[] = [];
  spec.studies.forEach((id, i) => {
    const s = study(id);
    if (!s)
      throw bad(`studies[${i}]`, `no study ${/^[\w-]{1,64}$/.test(id) ? id : "with that id"}`, "not_found");
    for (const series of s.series) {
      if (wanted && !wanted.delete(series.id)) continue;
      const says = series.modality === "CT" ? "ct" : series.modality === "MR" ? "mri" : undefined;
      if (says && says !== spec.modality)
        throw bad(
          "modality",
          `series ${series.id} of study ${id} is ${series.modality}, not ${spec.modality}`,
        );
      if (spec.slices && spec.slices[1] > series.slices)
        throw bad("slices", `[${spec.slices}] is outside series ${series.id}'s ${series.slices} slices`);
      data.push({
        volume: seriesBase(id, series.id),
        ...(spec.slices ? { slices: spec.slices } : {}),
        source: `study ${id}, series ${series.id}${series.description ? ` (${series.description})` : ""}`,
      });
      described.push(series.description || series.id);
    }
  });
  if (wanted?.size) throw bad("series", `no series ${[...wanted][0]} in the studies given`, "not_found");
  if (data.length === 0) throw bad("studies", "the studies hold no series to train on");
  if (spec.slices && spec.slices[0] >= spec.slices[1])
    throw bad("slices", `[${spec.slices}] is empty (the end is exclusive)`);
  let init: TrainTask["init"];
  let base: { network: UNetConfig; size: number; sde: SdeConfig } | undefined;
  if (spec.init !== undefined) {
    const m = model(spec.init);
    if (!m) throw bad("init", `no model named '${spec.init}'`, "not_found");
    const { info } = readPriorInfo(m.dir);
    if (info.modality !== spec.modality)
      throw bad(
        "init",
        `'${spec.init}' is a ${info.modality.toUpperCase()} prior, not ${spec.modality.toUpperCase()}`,
      );
    // models/<name>, of the package or of the data folder.
    init = { root: m.shipped ? "package" : "data", path: `models/${spec.init}` };
    base = { network: info.network, size: info.imageSize, sde: info.sde };
  }
  const network: UNetConfig = spec.network
    ? { ...DEFAULT_UNET, ...spec.network }
    : (base?.network ?? DEFAULT_UNET);
  let augment: Augmentation[] = [];
  if (typeof spec.augment === "string" || spec.augment.length)
    try {
      augment = parseAugmentations(
        typeof spec.augment === "string" ? spec.augment : spec.augment.join(","),
        spec.modality,
      );
    } catch (e) {
      throw bad("augment", (e as Error).message.replace(/^--augment: /, ""));
    }
  const task: TrainTask = {
    out: out(spec.name),
    modality: spec.modality,
    data,
    dataDescription: `${data.length} series of ${spec.studies.length} ${spec.studies.length === 1 ? "study" : "studies"} (${described.join(", ")})`,
    size: spec.size ?? base?.size ?? 48,
    steps: spec.steps,
    batch: spec.batch,
    seed: spec.seed,
    lr: spec.lr,
    warmup: spec.warmup ?? Math.min(500, Math.ceil(spec.steps / 10)),
    checkpointEvery: spec.checkpointEvery,
    network,
    sde: base?.sde ?? { name: "ve", sigmaMin: 0.01, sigmaMax: 50 },
    augment,
    ...(init ? { init } : {}),
    grid: spec.grid,
    command: `POST /api/models ${spec.name}${spec.init ? ` (init ${spec.init})` : ""}`,
  };
  return { spec, task };
}

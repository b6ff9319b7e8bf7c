/**
 * A training's record (trainings/<name>/training.json) and its view: created queued, one change
 * per reported step or checkpoint, finished once. Plain data; TrainingService (server/trainings.ts)
 * saves it and sends the events to its subscribers.
 */
import { randomUUID } from "node:crypto";
import type { TrainEvent } from "../src/queue/train-task.js";
import type { ResolvedTraining, TrainingSpec } from "./training-spec.js";

export type TrainingState = "queued" | "training" | "ready" | "failed" | "cancelled";
export const FINAL_TRAINING_STATES: readonly TrainingState[] = ["ready", "failed", "cancelled"];

/** Loss points kept for the curve (the most recent). */
export const LOSS_POINTS = 500;
/** Steps over which steps/s is measured. */
const RATE_WINDOW = 20;

export interface TrainingRecord {
  /** The training's own id (its queue group): a name deleted and used again is another training. */
  id: string;
  name: string;
  created: string;
  spec: TrainingSpec;
  task: ResolvedTraining["task"];
  state: TrainingState;
  step: number;
  steps: number;
  /** The recent loss curve: [step, loss]. */
  loss: [number, number][];
  stepsPerSecond?: number;
  /** The last checkpoint's step, and that of its sample grid (grid.png) when drawn. */
  checkpoint?: number;
  grid?: { step: number; seconds?: number };
  restarts: number;
  /** The step each run started at: 0, then a checkpoint's for each resumption. */
  runs: number[];
  started?: string;
  finished?: string;
  error?: { code: string; message: string };
}

export interface TrainingEvent {
  type: "progress" | "checkpoint" | "grid" | "state";
  model: string;
  state?: TrainingState;
  step?: number;
  steps?: number;
  loss?: number;
  stepsPerSecond?: number;
  etaSeconds?: number;
  error?: TrainingRecord["error"];
}

export const isFinalTraining = (r: TrainingRecord) => FINAL_TRAINING_STATES.includes(r.state);

export function newTrainingRecord(t: ResolvedTraining): TrainingRecord {
  return {
    id: randomUUID(),
    name: t.spec.name,
    created: new Date().toISOString(),
    spec: t.spec,
    task: t.task,
    state: "queued",
    step: 0,
    steps: t.task.steps,
    loss: [],
    restarts: 0,
    runs: [],
  };
}

export const etaSeconds = (r: TrainingRecord) =>
  r.stepsPerSecond ? Math.round((r.steps - r.step) / r.stepsPerSecond) : undefined;

/** Step times by training, for steps/s (not saved: a resumed run measures afresh). */
const stepTimes = new WeakMap<TrainingRecord, number[]>();

/** A reported step or checkpoint applied to the record; the event for subscribers. */
export function recordTrainEvent(r: TrainingRecord, e: TrainEvent): TrainingEvent {
  if (e.kind === "start") {
    r.runs.push(e.step);
    r.step = e.step;
    return { type: "progress", model: r.name, step: e.step, steps: r.steps };
  }
  if (e.kind === "checkpoint") {
    r.checkpoint = e.step;
    if (e.grid) r.grid = { step: e.step, seconds: e.gridSeconds };
    return { type: e.grid ? "grid" : "checkpoint", model: r.name, step: e.step };
  }
  // A run resumed from a checkpoint goes over steps it had reported before the stop.
  while (r.loss.length && r.loss[r.loss.length - 1][0] >= e.step) r.loss.pop();
  r.loss.push([e.step, e.loss]);
  if (r.loss.length > LOSS_POINTS) r.loss.splice(0, r.loss.length - LOSS_POINTS);
  const times = stepTimes.get(r) ?? [];
  if (e.step !== r.step + 1) times.length = 0;
  times.push(performance.now());
  if (times.length > RATE_WINDOW) times.shift();
  stepTimes.set(r, times);
  if (times.length > 1) r.stepsPerSecond = ((times.length - 1) * 1000) / (times.at(-1)! - times[0]);
  r.step = e.step;
  return {
    type: "progress",
    model: r.name,
    step: r.step,
    steps: r.steps,
    loss: e.loss,
    stepsPerSecond: r.stepsPerSecond,
    etaSeconds: etaSeconds(r),
  };
}

export function markTrainingFinished(
  r: TrainingRecord,
  state: TrainingState,
  error?: TrainingRecord["error"],
): TrainingEvent {
  r.state = state;
  r.finished = new Date().toISOString();
  if (error) r.error = error;
  return { type: "state", model: r.name, state, step: r.step, ...(error ? { error } : {}) };
}

/** What GET /api/models/:name answers for a training. */
export function trainingView(r: TrainingRecord) {
  return {
    name: r.name,
    state: r.state,
    step: r.step,
    steps: r.steps,
    loss: r.loss.slice(-200),
    stepsPerSecond: r.stepsPerSecond ?? null,
    etaSeconds: isFinalTraining(r) ? null : (etaSeconds(r) ?? null),
    checkpoint: r.checkpoint ?? null,
    grid: r.grid ? { step: r.grid.step, url: `/api/models/${r.name}/grid` } : null,
    created: r.created,
    started: r.started ?? null,
    finished: r.finished ?? null,
    restarts: r.restarts,
    runs: r.runs,
    spec: r.spec,
    ...(r.error ? { error: r.error } : {}),
  };
}

/**
 * Trainings of user priors (POST /api/models), run like jobs: never on the event loop (each in a
 * process of its own, src/queue/train-task.ts, or on a queue worker with REDIS_URL), from a queue
 * of their own that runs ONE training at a time, beside the jobs' worker processes (a training
 * takes one core). In the data folder:
 *
 *   trainings/<name>/training.json  the record: spec, task, state, step, loss curve
 *   trainings/<name>/checkpoint/    trainPrior's folder (model.json, weights.bin, prior.json,
 *                                   train-state.*), written every `checkpointEvery` steps
 *   trainings/<name>/grid.png       samples drawn from the last checkpoint
 *   models/<name>/                  the prior once ready (renamed into place whole)
 *
 * A training found queued or training at a start (a stopped or killed server) is queued again and
 * resumes from its last checkpoint; a graceful stop leaves it queued the same way.
 */
import { EventEmitter } from "node:events";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { ServerStopping, UserError } from "../src/errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../src/io/atomic.js";
import type { TrainEvent, TrainOutcome, TrainTask } from "../src/queue/train-task.js";
import { EmbeddedQueue, type JobQueue } from "./job-queue.js";
import {
  isFinalTraining,
  markTrainingFinished,
  newTrainingRecord,
  recordTrainEvent,
  type TrainingEvent,
  type TrainingRecord,
  type TrainingState,
} from "./training-record.js";
import type { ResolvedTraining } from "./training-spec.js";
import { WriteChains } from "./write-chains.js";

/** Runs one training task (runTrainTask, or over the queue), `id` its group. */
export type TrainRunner = (
  id: string,
  task: TrainTask,
  onEvent: (e: TrainEvent) => void,
  signal: AbortSignal,
) => Promise<TrainOutcome>;

const TRAININGS = "trainings";
/** Seconds between saves of a training's record while it runs (and at every checkpoint). */
const SAVE_EVERY_MS = 2000;

export const trainingFolder = (name: string) => join(TRAININGS, name);
export const checkpointFolder = (name: string) => join(TRAININGS, name, "checkpoint");

export class TrainingService {
  readonly events = new EventEmitter();
  private readonly records = new Map<string, TrainingRecord>();
  private readonly runs = new Map<string, Promise<void>>();
  private readonly saving = new WriteChains();
  private readonly queue: JobQueue;

  constructor(
    private readonly root: string,
    private readonly runner: TrainRunner,
  ) {
    this.events.setMaxListeners(0);
    const dir = join(root, TRAININGS);
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir).sort()) {
      try {
        const r = JSON.parse(readFileSync(join(dir, name, "training.json"), "utf8")) as TrainingRecord;
        this.records.set(r.name, r);
      } catch {
        // A folder without a readable record: a training being created when the server stopped.
      }
    }
    this.queue = new EmbeddedQueue(
      1,
      (name, signal) => this.run(name, signal),
      (name) =>
        void this.finish(this.records.get(name)!, "cancelled").catch((err: unknown) =>
          console.error(`training ${name}: its cancelled state could not be saved:`, err),
        ),
    );
  }

  /** Queues again the trainings a stopped server left queued or training. */
  async recover(): Promise<void> {
    for (const r of [...this.records.values()].sort((a, b) => a.created.localeCompare(b.created)))
      if (!isFinalTraining(r)) {
        if (r.state === "training") r.restarts++;
        r.state = "queued";
        await this.save(r);
        this.queue.enqueue(r.name);
      }
  }

  get(name: string): TrainingRecord | undefined {
    return this.records.get(name);
  }

  list(): TrainingRecord[] {
    return [...this.records.values()];
  }

  async create(t: ResolvedTraining): Promise<TrainingRecord> {
    const r = newTrainingRecord(t);
    // Whatever an unreadable record left there is not this training's checkpoint to resume.
    rmSync(join(this.root, trainingFolder(r.name)), { recursive: true, force: true });
    this.records.set(r.name, r);
    await this.save(r);
    this.queue.enqueue(r.name);
    return r;
  }

  cancel(name: string): boolean {
    return this.queue.cancel(name);
  }

  /** Removes a finished training's record and folders, and its prior when it has one. */
  remove(name: string): void {
    const r = this.records.get(name);
    if (r && !isFinalTraining(r)) throw new Error(`training ${name} is still ${r.state}`);
    this.records.delete(name);
    // Renamed first, so that a crash mid-delete never leaves a half prior that still lists.
    for (const dir of [join(this.root, "models", name), join(this.root, trainingFolder(name))])
      if (existsSync(dir)) {
        const doomed = join(this.root, TRAININGS, `.${randomUUID()}.deleted`);
        renameSync(dir, doomed);
        rmSync(doomed, { recursive: true, force: true });
      }
  }

  /** The latest sample grid's PNG, when there is one. */
  grid(name: string): string | undefined {
    const file = join(this.root, trainingFolder(name), "grid.png");
    return this.records.get(name)?.grid && existsSync(file) ? file : undefined;
  }

  async close(): Promise<void> {
    await this.queue.close();
    await Promise.allSettled([...this.runs.values()]);
    await this.saving.settled();
  }

  private save(r: TrainingRecord): Promise<void> {
    const dir = join(this.root, trainingFolder(r.name));
    const removed = () => this.records.get(r.name) !== r;
    return this.saving.then(r.name, async () => {
      // A record removed meanwhile (DELETE) is not written back, nor is a write that its removal
      // overtook (its folder renamed away mid-write) an error.
      if (removed()) return;
      mkdirSync(dir, { recursive: true });
      try {
        await writeJsonAtomic(join(dir, "training.json"), r);
      } catch (err) {
        if (!removed()) throw err;
      }
    });
  }

  private emit(e: TrainingEvent): void {
    this.events.emit(e.model, e);
  }

  private async finish(r: TrainingRecord, state: TrainingState, error?: TrainingRecord["error"]) {
    const event = markTrainingFinished(r, state, error);
    await this.save(r);
    this.emit(event);
  }

  private run(name: string, signal: AbortSignal): Promise<void> {
    const r = this.records.get(name);
    if (!r || isFinalTraining(r)) return Promise.resolve();
    const running = this.train(r, signal).finally(() => this.runs.delete(name));
    this.runs.set(name, running);
    return running;
  }

  private async train(r: TrainingRecord, signal: AbortSignal): Promise<void> {
    r.state = "training";
    r.started ??= new Date().toISOString();
    await this.save(r);
    this.emit({ type: "state", model: r.name, state: "training", step: r.step });
    let saved = performance.now();
    // Grid PNGs are written in order, and the training ends only after the last one is written
    // (it is published with the prior, and its event reaches viewers before the final state).
    let gridWritten = Promise.resolve();
    const onEvent = (e: TrainEvent) => {
      const event = recordTrainEvent(r, e);
      if (e.kind === "checkpoint" || performance.now() - saved > SAVE_EVERY_MS) {
        saved = performance.now();
        void this.save(r).catch(() => {});
      }
      // A grid's event once its PNG can be fetched.
      if (e.kind === "checkpoint" && e.grid) {
        const png = Buffer.from(e.grid, "base64");
        gridWritten = gridWritten
          .then(() => writeFileAtomic(join(this.root, trainingFolder(r.name), "grid.png"), png))
          .then(() => this.emit(event))
          .catch(() => {});
      } else this.emit(event);
    };
    try {
      await this.runner(r.id, r.task, onEvent, signal).finally(() => gridWritten);
      this.publish(r.name);
      await this.finish(r, "ready");
    } catch (err) {
      if (signal.aborted) {
        if (signal.reason instanceof ServerStopping) {
          r.state = "queued";
          await this.save(r);
        } else await this.finish(r, "cancelled");
      } else await this.finish(r, "failed", errorOf(r.name, err));
    }
  }

  /** The checkpoint's prior files copied into models/<name>, which appears whole or not at all. */
  private publish(name: string): void {
    const from = join(this.root, checkpointFolder(name));
    const building = join(this.root, trainingFolder(name), "publish");
    rmSync(building, { recursive: true, force: true });
    mkdirSync(building, { recursive: true });
    for (const f of ["model.json", "weights.bin", "prior.json"])
      copyFileSync(join(from, f), join(building, f));
    const grid = join(this.root, trainingFolder(name), "grid.png");
    if (existsSync(grid)) copyFileSync(grid, join(building, "samples.png"));
    const target = join(this.root, "models", name);
    mkdirSync(join(this.root, "models"), { recursive: true });
    rmSync(target, { recursive: true, force: true });
    renameSync(building, target);
  }
}

function errorOf(name: string, err: unknown): NonNullable<TrainingRecord["error"]> {
  if (err instanceof UserError) return { code: err.code, message: err.message };
  const ref = randomUUID().slice(0, 8);
  console.error(`training ${name} failed (error id ${ref}):`, err);
  return { code: "internal", message: `internal error (error id ${ref})` };
}

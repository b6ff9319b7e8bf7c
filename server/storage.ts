/**
 * The server's data directory. Everything is addressed by random UUIDs, never by a user-supplied
 * name or path, and every file is written atomically (temp file + rename):
 *
 *   studies/<study>/study.json            the study and its series (written last: a study exists
 *                                         once this file does)
 *   studies/<study>/series/<series>.json  the series' Volume without voxels (spacing, DICOM source)
 *   studies/<study>/series/<series>.npy   its voxels, float32 [slices, rows, cols]
 *   jobs/<job>/job.json                   the job: spec, state, progress, metrics so far
 *   jobs/<job>/slices/                    finished slices (src/recon/slice-store.ts)
 *   jobs/<job>/results/<method>.json/.npy each method's volume once the job is done
 *   uploads/                              uploads being received (cleared at start)
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { percentiles } from "../src/image/stats.js";
import type { Volume } from "../src/image/volume.js";
import { writeFileAtomic, writeJsonAtomic } from "../src/io/atomic.js";
import { encodeNpy } from "../src/io/npy.js";
import { readStoredVolume } from "../src/io/stored-volume.js";
import { folderSliceStore, type SliceStore } from "../src/recon/slice-store.js";
import type { JobRecord } from "./job-record.js";
import type { SeriesInfo, StudyRecord } from "./study-record.js";

const JOBS = "jobs";
const STUDIES = "studies";

/**
 * The folder of a job's finished slices, relative to the data folder: also where queue workers,
 * which see the data folder under a path of their own, put them (src/queue).
 */
export const jobStore = (jobId: string): string => join(JOBS, jobId, "slices");

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A stored series' files without their extension (.json, .npy), relative to the data folder. */
export const seriesBase = (studyId: string, seriesId: string): string =>
  join(STUDIES, studyId, "series", seriesId);

export class Storage {
  readonly studiesDir: string;
  readonly jobsDir: string;
  readonly uploadsDir: string;
  private readonly volumes = new Map<string, Volume>();
  /**
   * Every study and job, read once at start (oldest first) and then kept in memory: the folder
   * has one server, so listing or finding one never touches the disk. A job's record is the one
   * object its runner updates and saves.
   */
  private readonly studyRecords: Map<string, StudyRecord>;
  private readonly jobRecords: Map<string, JobRecord>;

  constructor(readonly root: string) {
    this.studiesDir = join(root, STUDIES);
    this.jobsDir = join(root, JOBS);
    this.uploadsDir = join(root, "uploads");
    for (const d of [this.studiesDir, this.jobsDir]) mkdirSync(d, { recursive: true });
    // Uploads interrupted by a restart are incomplete by definition.
    rmSync(this.uploadsDir, { recursive: true, force: true });
    mkdirSync(this.uploadsDir, { recursive: true });
    this.studyRecords = readRecords<StudyRecord>(this.studiesDir, "study.json");
    this.jobRecords = readRecords<JobRecord>(this.jobsDir, "job.json");
  }

  /** A fresh folder for one upload's files. */
  uploadFolder(): string {
    const dir = join(this.uploadsDir, randomUUID());
    mkdirSync(dir);
    return dir;
  }

  /** Stores a study's series and then its record; the study appears at once or not at all. */
  async addStudy(
    source: string,
    files: number,
    volumes: Volume[],
    descriptions: string[],
    /** Display windows when already computed (off the event loop, by the upload's parser). */
    windows: { center: number; width: number }[] = volumes.map(defaultWindow),
  ): Promise<StudyRecord> {
    const id = randomUUID();
    const building = join(this.uploadsDir, `${id}.study`);
    mkdirSync(join(building, "series"), { recursive: true });
    const series: SeriesInfo[] = [];
    for (const [k, v] of volumes.entries()) {
      const sid = randomUUID();
      const { data, ...meta } = v;
      await writeJsonAtomic(join(building, "series", `${sid}.json`), meta);
      await writeFileAtomic(
        join(building, "series", `${sid}.npy`),
        encodeNpy([v.slices, v.rows, v.cols], data, "float32"),
      );
      series.push({
        id: sid,
        description: descriptions[k] ?? "",
        modality: v.modality,
        units: v.units,
        rows: v.rows,
        cols: v.cols,
        slices: v.slices,
        spacing: v.spacing,
        window: windows[k],
      });
    }
    const record: StudyRecord = { id, created: new Date().toISOString(), source, files, series };
    await writeJsonAtomic(join(building, "study.json"), record);
    renameSync(building, join(this.studiesDir, id));
    this.studyRecords.set(id, record);
    return record;
  }

  study(id: string): StudyRecord | undefined {
    return this.studyRecords.get(id);
  }

  /** Every study, oldest first. */
  studies(): StudyRecord[] {
    return [...this.studyRecords.values()];
  }

  deleteStudy(id: string): boolean {
    if (!this.study(id)) return false;
    for (const key of this.volumes.keys()) if (key.startsWith(id)) this.volumes.delete(key);
    this.studyRecords.delete(id);
    // Renamed first, so that a crash mid-delete never leaves a half study that still lists.
    const doomed = join(this.uploadsDir, `${id}.deleted`);
    renameSync(join(this.studiesDir, id), doomed);
    rmSync(doomed, { recursive: true, force: true });
    return true;
  }

  /** A series' volume (cached in memory). */
  volume(studyId: string, seriesId: string): Volume | undefined {
    const study = this.study(studyId);
    if (!study || !study.series.some((s) => s.id === seriesId)) return undefined;
    return this.cached(`${studyId}/${seriesId}`, () =>
      readStoredVolume(join(this.root, seriesBase(studyId, seriesId))),
    );
  }

  jobDir(id: string): string {
    return join(this.jobsDir, id);
  }

  job(id: string): JobRecord | undefined {
    return this.jobRecords.get(id);
  }

  /** Every job, oldest first. */
  jobs(): JobRecord[] {
    return [...this.jobRecords.values()];
  }

  async saveJob(job: JobRecord): Promise<void> {
    this.jobRecords.set(job.id, job);
    mkdirSync(this.jobDir(job.id), { recursive: true });
    await writeJsonAtomic(join(this.jobDir(job.id), "job.json"), job);
  }

  /** Removes a job's results and finished slices (its record stays). */
  async removeJobOutputs(id: string): Promise<void> {
    for (const key of this.volumes.keys()) if (key.startsWith(`${id}:`)) this.volumes.delete(key);
    for (const sub of ["results", "slices"])
      await rm(join(this.jobDir(id), sub), { recursive: true, force: true });
  }

  sliceStore(jobId: string): SliceStore {
    return folderSliceStore(join(this.root, jobStore(jobId)));
  }

  async saveResult(jobId: string, method: string, v: Volume): Promise<void> {
    const dir = join(this.jobDir(jobId), "results");
    mkdirSync(dir, { recursive: true });
    const { data, ...meta } = v;
    await writeFileAtomic(join(dir, `${method}.npy`), encodeNpy([v.slices, v.rows, v.cols], data, "float32"));
    await writeJsonAtomic(join(dir, `${method}.json`), meta);
  }

  result(jobId: string, method: string): Volume | undefined {
    const base = join(this.jobDir(jobId), "results", method);
    return existsSync(`${base}.json`)
      ? this.cached(`${jobId}:${method}`, () => readStoredVolume(base))
      : undefined;
  }

  /** Stored volumes never change once written: keep the last few in memory. */
  private cached(key: string, read: () => Volume): Volume {
    const hit = this.volumes.get(key);
    if (hit) return hit;
    const v = read();
    if (this.volumes.size >= 16) this.volumes.delete(this.volumes.keys().next().value!);
    this.volumes.set(key, v);
    return v;
  }
}

/**
 * Every `<dir>/<id>/<file>` record, oldest first. A folder without its record (a job being created
 * when the server stopped) or with an unreadable one is left out.
 */
function readRecords<T extends { id: string; created: string }>(dir: string, file: string): Map<string, T> {
  const records: T[] = [];
  for (const id of readdirSync(dir)) {
    const path = join(dir, id, file);
    if (!UUID.test(id) || !existsSync(path)) continue;
    try {
      records.push(JSON.parse(readFileSync(path, "utf8")) as T);
    } catch {
      // Records are written atomically: an unreadable one was damaged outside the server.
    }
  }
  records.sort((a, b) => a.created.localeCompare(b.created));
  return new Map(records.map((r) => [r.id, r]));
}

/** CT in HU: a soft-tissue window (40/400); otherwise the 1st-99th percentile range. */
export function defaultWindow(v: Volume): { center: number; width: number } {
  if (v.units === "HU") return { center: 40, width: 400 };
  const [lo, hi] = percentiles(v.data, [0.01, 0.99]);
  return { center: (lo + hi) / 2, width: Math.max(hi - lo, 1e-6) };
}

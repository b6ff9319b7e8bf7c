/**
 * `serve --demo`: a phantom study and a finished comparison job, so that a first look shows a
 * result with no upload. Made once per data folder (kept there like any study and job).
 */
import { generatePhantom } from "../phantoms/index.js";
import { makeVolume } from "../src/image/volume.js";
import type { ScoreReconServer } from "./app.js";
import { resolveJobSpec } from "./spec.js";

export const DEMO_SLICES = 3;

export async function ensureDemo(s: ScoreReconServer): Promise<{ study: string; job: string }> {
  const existing = s.storage.studies().find((x) => x.source === "demo");
  if (existing) {
    const job = s.jobs.list().find((j) => j.study === existing.id);
    if (job) return { study: existing.id, job: job.id };
  }
  const size = 256;
  const data = new Float32Array(DEMO_SLICES * size * size);
  for (let k = 0; k < DEMO_SLICES; k++)
    data.set(generatePhantom("brain", size, 1_000_100 + k).data, k * size * size);
  const volume = makeVolume(DEMO_SLICES, size, size, data, { modality: "MR", spacing: [1, 1, 3] });
  const study = existing ?? (await s.storage.addStudy("demo", 0, [volume], ["brain phantom (demo)"]));
  const plan = resolveJobSpec(
    {
      study: study.id,
      slices: [1, 3],
      mri: { acceleration: 4, centerFraction: 0.08 },
      methods: [{ name: "zero-filled" }, { name: "tv" }, { name: "score" }],
    },
    (id) => s.storage.study(id),
    () => undefined,
  );
  const job = await s.jobs.create(study.id, plan);
  return { study: study.id, job: job.id };
}

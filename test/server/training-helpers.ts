/** What the training tests share. */

/** A tiny training: a few seconds on a shared 2-core machine. */
export const tinyTraining = (name: string, studyId: string, extra: Record<string, unknown> = {}) => ({
  name,
  modality: "mri",
  studies: [studyId],
  steps: 6,
  size: 16,
  batch: 2,
  network: { channels: 8, channelMult: [1, 2] },
  checkpointEvery: 3,
  grid: { count: 2, steps: 2 },
  seed: 3,
  ...extra,
});

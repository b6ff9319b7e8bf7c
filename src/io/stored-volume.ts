/**
 * A volume as the server's data folder stores it (server/storage.ts): `<base>.json`, the Volume
 * without its voxels, and `<base>.npy`, the voxels as float32 [slices, rows, cols]. Read by the
 * server and by queue workers that train on stored studies (src/queue/train-task.ts).
 */
import { readFileSync } from "node:fs";
import { makeVolume, type Volume } from "../image/volume.js";
import { readNpy } from "./npy.js";

export function readStoredVolume(base: string): Volume {
  const meta = JSON.parse(readFileSync(`${base}.json`, "utf8")) as Omit<Volume, "data">;
  const a = readNpy(`${base}.npy`);
  return makeVolume(meta.slices, meta.rows, meta.cols, a.data, meta);
}

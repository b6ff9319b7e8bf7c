/**
 * Finished slices kept on disk so that an interrupted reconstruction resumes where it stopped
 * (`reconstruct --resume`, the server's restarts). A slice is finished when its record
 * `slice-NNNN.json` exists: it is written, atomically, only after the pixels (`slice-NNNN.npy`,
 * also atomic), and it names the hash of the measurements (or of the image and noise seed they are
 * simulated from) and of the method, its parameters and the acquisition, so a re-run with other
 * settings or other data never reuses a stale slice.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { encodeNpy, readNpy } from "../io/npy.js";
import type { Acquisition } from "./acquisition.js";
import type { MethodRequest } from "./methods.js";
import type { SliceInput, SliceOutput } from "./slice-task.js";

export interface SliceKey {
  acquisition: Acquisition;
  method: MethodRequest;
  slice: number;
  /** What the slice is reconstructed from: part of the identity of its result. */
  input: SliceInput;
}

export interface SliceStore {
  get(key: SliceKey): SliceOutput | undefined;
  put(key: SliceKey, output: SliceOutput): Promise<void>;
}

const hash = (...parts: (string | Uint8Array)[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex").slice(0, 16);
};

interface Record {
  slice: number;
  seconds: number;
  measurements: string;
  std: boolean;
}

/** A SliceStore in a folder (one subfolder per method and settings). */
export function folderSliceStore(dir: string): SliceStore {
  const paths = (k: SliceKey) => {
    const sub = join(dir, `${k.method.name}-${hash(JSON.stringify([k.acquisition, k.method]))}`);
    const stem = join(sub, `slice-${String(k.slice).padStart(4, "0")}`);
    return { sub, npy: `${stem}.npy`, json: `${stem}.json` };
  };
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  // Measurements hash as they are; a simulated slice by its image and noise seed.
  const yHash = ({ input: i }: SliceKey) =>
    i.kind === "measured" ? hash(bytes(i.y)) : hash(`simulated:${i.seed}:`, bytes(i.x));
  return {
    get(k) {
      const p = paths(k);
      if (!existsSync(p.json) || !existsSync(p.npy)) return undefined;
      let rec: Record;
      try {
        rec = JSON.parse(readFileSync(p.json, "utf8")) as Record;
      } catch {
        return undefined;
      }
      if (rec.measurements !== yHash(k)) return undefined;
      const a = readNpy(p.npy);
      const n = a.shape[1] * a.shape[2];
      const data = Float32Array.from(a.data);
      return {
        image: data.slice(0, n),
        ...(rec.std ? { std: data.slice(n, 2 * n) } : {}),
        seconds: rec.seconds,
      };
    },
    async put(k, out) {
      const p = paths(k);
      mkdirSync(p.sub, { recursive: true });
      const n = out.image.length;
      const data = new Float32Array(out.std ? 2 * n : n);
      data.set(out.image);
      if (out.std) data.set(out.std, n);
      await writeFileAtomic(p.npy, encodeNpy([out.std ? 2 : 1, 1, n], data, "float32"));
      const rec: Record = { slice: k.slice, seconds: out.seconds, measurements: yHash(k), std: !!out.std };
      await writeFileAtomic(p.json, Buffer.from(JSON.stringify(rec) + "\n"));
    },
  };
}

/**
 * A slice task as it travels through Redis: JSON with its typed arrays as base64 and without the
 * ground truth (scored on the submitting side), the slice store it belongs to named relative to
 * the workers' data folder (every machine may mount that folder where it likes), and its
 * cancellation group.
 */
import { createHash } from "node:crypto";
import { isAbsolute, relative, resolve } from "node:path";
import type { SliceKey } from "../recon/slice-store.js";
import type { SliceInput, SliceTask } from "../recon/slice-task.js";

/** The BullMQ queue of slice tasks. */
export const SLICE_QUEUE = "scorerecon-slices";
/** The Redis channel a cancelled group's id is published on, for every worker. */
export const CANCEL_CHANNEL = "scorerecon:cancel";

export interface TaskData {
  /** The task with its typed arrays as base64. */
  task: Omit<SliceTask, "input" | "maskFromFile"> & {
    input: { kind: SliceInput["kind"]; data: string; seed?: number };
    mask?: string;
  };
  /** The slice store, relative to the workers' data folder. */
  store: string;
  /** Cancellation group: a job (or batch) id. */
  group: string;
}

export interface TaskResult {
  seconds: number;
}

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
function fromB64<T>(s: string, make: (b: ArrayBuffer) => T): T {
  const buf = Buffer.from(s, "base64");
  return make(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** What a task's result is stored under in its slice store. */
export function keyOf(t: SliceTask): SliceKey {
  return { acquisition: t.acquisition, method: t.method, slice: t.slice, input: t.input };
}

function encodeInput(i: SliceInput): TaskData["task"]["input"] {
  return i.kind === "measured"
    ? { kind: i.kind, data: b64(i.y) }
    : { kind: i.kind, data: b64(i.x), seed: i.seed };
}

function decodeInput(i: TaskData["task"]["input"]): SliceInput {
  const data = fromB64(i.data, (b) => new Float32Array(b));
  return i.kind === "measured" ? { kind: i.kind, y: data } : { kind: i.kind, x: data, seed: i.seed ?? 0 };
}

export function encodeTask(task: SliceTask, store: string, group: string): TaskData {
  return {
    task: {
      ...task,
      input: encodeInput(task.input),
      mask: task.maskFromFile && b64(task.maskFromFile),
      maskFromFile: undefined,
      // Scored by the submitter, not on the worker: the truth stays out of Redis.
      truth: undefined,
    } as TaskData["task"],
    store,
    group,
  };
}

export function decodeTask(t: TaskData["task"]): SliceTask {
  return {
    ...t,
    input: decodeInput(t.input),
    ...(t.mask ? { maskFromFile: fromB64(t.mask, (b) => new Uint8Array(b)) } : {}),
  };
}

/** One queue id per group, task and settings: a task is never queued twice while it waits or runs. */
export function taskId(group: string, task: SliceTask): string {
  const settings = createHash("sha1")
    .update(JSON.stringify([task.acquisition, task.method]))
    .digest("hex")
    .slice(0, 12);
  return `${group}-${task.method.name}-${task.slice}-${settings}`;
}

/** The store folder under the data folder; never outside it. */
export function storeFolder(dataDir: string, store: string): string {
  const path = resolve(dataDir, store);
  const rel = relative(resolve(dataDir), path);
  if (!rel || rel.startsWith("..") || isAbsolute(rel))
    throw new Error(`slice store ${store} is outside the data folder`);
  return path;
}

/** The worker thread of ingest.ts: parses one upload folder and answers once. */
import { parentPort, workerData } from "node:worker_threads";
import { UserError } from "../src/errors.js";
import { parseUpload, type ParseOptions, type WorkerAnswer } from "./ingest.js";

const { dir, options } = workerData as { dir: string; options: ParseOptions };

parseUpload(dir, options).then(
  (parsed) =>
    parentPort!.postMessage({ ok: true, parsed } satisfies WorkerAnswer, [
      ...new Set(parsed.volumes.map((v) => v.data.buffer as ArrayBuffer)),
    ]),
  (e: unknown) => {
    const answer: WorkerAnswer =
      e instanceof UserError
        ? { ok: false, user: true, message: e.message, code: e.code, field: e.field }
        : { ok: false, user: false, message: String((e as Error)?.message ?? e), stack: (e as Error)?.stack };
    parentPort!.postMessage(answer);
  },
);

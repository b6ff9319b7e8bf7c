/** Worker-thread entry of the slice pool (src/recon/pool.ts): runs slice tasks one at a time. */
import { parentPort } from "node:worker_threads";
import { UserError } from "../errors.js";
import { initBackend } from "../prior/backend.js";
import { findMethod } from "./methods.js";
import type { WorkerMessage } from "./pool.js";
import { runSliceTask, type SliceTask } from "./slice-task.js";

const port = parentPort!;
const send = (m: WorkerMessage) => port.postMessage(m);

port.on("message", async (task: SliceTask) => {
  try {
    if (findMethod(task.method.name).needsPrior) await initBackend();
    const output = runSliceTask(task, (done, total) => send({ kind: "progress", done, total }));
    send({ kind: "done", output });
  } catch (err) {
    if (err instanceof UserError)
      send({ kind: "error", message: err.message, code: err.code, field: err.field });
    else send({ kind: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});

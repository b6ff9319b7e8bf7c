/** Worker-thread entry of the slice pool (src/recon/pool.ts): runs slice tasks one at a time. */
import { parentPort, workerData } from "node:worker_threads";
import { UserError } from "../errors.js";
import { initEngine, setEngineThreads, threadsPerWorker } from "../prior/engine.js";
import { findMethod } from "./methods.js";
import type { SliceRequest, WorkerMessage } from "./pool.js";
import { runSliceTask } from "./slice-task.js";

const port = parentPort!;
const send = (m: WorkerMessage) => port.postMessage(m);
// The pool's workers share the cores: workers x threads per evaluation <= cores.
setEngineThreads(threadsPerWorker((workerData as { workers?: number } | null)?.workers ?? 1));

port.on("message", async ({ task, cancelled }: SliceRequest) => {
  // The samplers and solvers read `aborted` between iterations: an AbortSignal-shaped view of the flag.
  const signal = {
    get aborted() {
      return Atomics.load(cancelled, 0) === 1;
    },
    reason: new Error("cancelled"),
  } as AbortSignal;
  try {
    if (findMethod(task.method.name).needsPrior) await initEngine();
    const output = runSliceTask(task, (done, total) => send({ kind: "progress", done, total }), signal);
    send({ kind: "done", output });
  } catch (err) {
    if (err instanceof UserError)
      send({ kind: "error", message: err.message, code: err.code, field: err.field });
    else send({ kind: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});

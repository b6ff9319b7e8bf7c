/** Entry of a slice pool's worker process (src/recon/pool.ts): runs slice tasks one at a time. */
import { toErrorMessage } from "../errors.js";
import { initEngine, setEngineThreads, threadsPerWorker } from "../prior/engine.js";
import { findMethod } from "./methods.js";
import type { SliceRequest, WorkerMessage } from "./pool.js";
import { runSliceTask } from "./slice-task.js";

const send = (m: WorkerMessage) => process.send!(m);
// The pool that forked this process: a task's progress is its chance to see that the pool went away.
const parent = process.ppid;
// The pool's workers share the cores: workers x threads per evaluation <= cores.
setEngineThreads(threadsPerWorker(Number(process.argv[2]) || 1));

// The pool cancels a task by killing this process; a pool that went away takes it along: at once
// when idle ('disconnect'), at the task's next progress report when a synchronous task keeps the
// event loop from running (the channel's state only changes there; the parent pid at once).
process.on("disconnect", () => process.exit(0));
const poolGone = () => !process.connected || process.ppid !== parent;
// Ctrl-C or a stop sent to the whole process group is for the parent to act on (a stopping
// server re-queues its jobs): a worker dying of it would fail its task instead.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => {});

process.on("message", async ({ task }: SliceRequest) => {
  try {
    if (findMethod(task.method.name).needsPrior) await initEngine();
    const output = runSliceTask(task, (done, total) => {
      if (poolGone()) process.exit(0);
      send({ kind: "progress", done, total });
    });
    send({ kind: "done", output });
  } catch (err) {
    send(toErrorMessage(err));
  }
});

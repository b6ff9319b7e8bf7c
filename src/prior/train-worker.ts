/**
 * Entry of a training worker thread (src/prior/parallel.ts): a copy of the score network on its
 * own TensorFlow.js backend; each request sets its weights and answers its share's gradient.
 */
import { parentPort, workerData } from "node:worker_threads";
import { toErrorMessage } from "../errors.js";
import { initBackend, tf, type BackendChoice } from "./backend.js";
import {
  assignFlat,
  shareGradient,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from "./parallel.js";
import { makeSde } from "./sde.js";
import { ScoreUNet } from "./unet.js";

const init = workerData as WorkerInit;
await initBackend(init.backend as BackendChoice);
const net = new ScoreUNet(init.network, makeSde(init.sde));
for (const [name, v] of net.variables)
  if (!v.trainable) tf.tidy(() => v.assign(tf.tensor(init.fixed[name], v.shape)));
const vars = net.trainable().map(([, v]) => v);
const port = parentPort!;

port.on("message", (m: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    assignFlat(vars, m.weights);
    reply = { kind: "gradient", ...shareGradient(net, vars, m.share, m.total) };
  } catch (err) {
    reply = toErrorMessage(err);
  }
  port.postMessage(reply, reply.kind === "gradient" ? [reply.grad.buffer as ArrayBuffer] : []);
});

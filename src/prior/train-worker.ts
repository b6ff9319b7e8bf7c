/**
 * Entry of a training worker thread (src/prior/parallel.ts): a copy of the score network on its
 * own TensorFlow.js backend; each request sets its weights from the shared buffer and writes its
 * share's gradient into its own.
 */
import { parentPort, workerData } from "node:worker_threads";
import { toErrorMessage } from "../errors.js";
import { initBackend, tf, type BackendChoice } from "./backend.js";
import {
  now,
  weightsAndGradient,
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
const weights = new Float32Array(init.weights);
const grad = new Float32Array(init.grad);
const port = parentPort!;

port.on("message", (m: WorkerRequest) => {
  const received = now();
  let reply: WorkerReply;
  try {
    const { loss, times } = weightsAndGradient(net, vars, weights, m.share, m.total, grad);
    reply = { kind: "gradient", loss, times, posted: m.posted, received, sent: now() };
  } catch (err) {
    reply = toErrorMessage(err);
  }
  port.postMessage(reply);
});

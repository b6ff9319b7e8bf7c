/**
 * The TensorFlow.js compute backend. In order of preference: `tensorflow` from
 * @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (native CPU) when they are installed
 * and their libtensorflow loads — both are optional dependencies, because their install downloads
 * libtensorflow, which fails on machines without that access — then WebAssembly with SIMD
 * (@tensorflow/tfjs-backend-wasm, the default here), then the pure-JS `cpu` backend.
 * `--backend` or SCORERECON_BACKEND chooses explicitly; the choice is printed once.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
// The union package: tfjs-core with every gradient registered (tfjs-core alone registers none)
// and the cpu backend.
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { UserError } from "../errors.js";

export const BACKENDS = ["auto", "node-gpu", "node", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKENDS)[number];

const require = createRequire(import.meta.url);
let chosen: string | undefined;

async function tryNative(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return await tf.setBackend("tensorflow");
  } catch {
    return false;
  }
}

/**
 * The gradient tape keeps a copy (an Identity kernel) of every tensor a gradient needs — both
 * inputs of each add and multiply, the input of each reshape — and the wasm backend's Identity
 * copies the data. Tensors are immutable (a variable's assign replaces its data), so the copy can
 * share the data, as the cpu backend's Identity does: a training pass then moves several hundred
 * fewer tensors through memory.
 */
function shareOnIdentity(backendName: string): void {
  tf.unregisterKernel(tf.Identity, backendName);
  tf.registerKernel({
    kernelName: tf.Identity,
    backendName,
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as tf.KernelBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

async function tryWasm(): Promise<boolean> {
  // The .wasm binaries ship inside the npm package: point the loader at them, never at a CDN.
  setWasmPaths(join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/");
  try {
    if (!(await tf.setBackend("wasm"))) return false;
    shareOnIdentity("wasm");
    return true;
  } catch {
    return false;
  }
}

/**
 * Selects and initialises the backend once per process; later calls return the same name.
 * `log` receives one line naming it (the CLI prints it on stderr).
 */
export async function initBackend(
  choice: BackendChoice = (process.env.SCORERECON_BACKEND as BackendChoice | undefined) ?? "auto",
  log: (line: string) => void = () => {},
): Promise<string> {
  if (chosen) return chosen;
  if (!BACKENDS.includes(choice))
    throw new UserError(
      `backend must be one of ${BACKENDS.join(", ")}, got '${choice}'`,
      "bad_flag",
      "--backend",
    );
  const attempts: [BackendChoice, () => Promise<boolean>][] = [
    ["node-gpu", () => tryNative("@tensorflow/tfjs-node-gpu")],
    ["node", () => tryNative("@tensorflow/tfjs-node")],
    ["wasm", tryWasm],
    ["cpu", () => tf.setBackend("cpu")],
  ];
  for (const [name, attempt] of attempts) {
    if (choice !== "auto" && choice !== name) continue;
    if (await attempt()) {
      await tf.ready();
      chosen = name;
      log(`scorerecon: TensorFlow.js backend ${name}${name === "wasm" ? " (SIMD)" : ""}`);
      return name;
    }
    if (choice !== "auto")
      throw new UserError(
        `backend '${name}' is not available on this machine (is its package installed?)`,
        "bad_flag",
        "--backend",
      );
  }
  throw new Error("no TensorFlow.js backend could be initialised");
}

export { tf };

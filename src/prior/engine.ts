/**
 * The inference engine that evaluates a prior's network. `onnx`: ONNX Runtime (onnxruntime-node,
 * native MLAS kernels; its CUDA provider when installed) on the graph src/prior/onnx-graph.ts
 * builds in memory from the loaded weights, so it can never be stale. `tfjs`: the TensorFlow.js
 * network itself (src/prior/unet.ts), on the backend of src/prior/backend.ts. `auto` (the default)
 * is ONNX Runtime when it loads, else tfjs. `--engine` or SCORERECON_ENGINE chooses; the choice is
 * printed once, and worker processes started later inherit it (through SCORERECON_ENGINE).
 *
 * Both engines compute the same function (test/prior/onnx.test.ts: to 1e-4 relative), and every
 * sampler calls one ScoreEngine. Training always runs on tfjs.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { initBackend, tf } from "./backend.js";
import type { LoadedPrior } from "./checkpoint.js";
import type { Dims, NamedWeight } from "./onnx-proto.js";
import type { ScoreUNet } from "./unet.js";

export const ENGINES = ["auto", "onnx", "tfjs"] as const;
export type EngineChoice = (typeof ENGINES)[number];
export type EngineName = "onnx" | "tfjs";

/** Evaluates a prior's score network. */
export interface ScoreEngine {
  readonly name: EngineName;
  /** s(x, t) for a batch x [B, H, W, 1] at times t (one per sample): a new tensor. */
  score(x: tf.Tensor4D, t: number[]): tf.Tensor4D;
}

type Ort = typeof import("onnxruntime-node");
type Binding = typeof import("onnxruntime-node/dist/binding.js");

interface OrtRuntime {
  Tensor: Ort["Tensor"];
  binding: Binding["binding"];
  version: string;
  /** Execution providers, in order of preference. */
  providers: string[];
  /** src/prior/onnx-graph.ts's builder (loaded with ONNX Runtime: the tfjs engine never needs it). */
  buildModel: (config: ScoreUNet["config"], weights: Map<string, NamedWeight>, dims: Dims) => Uint8Array;
}

let chosen: EngineName | undefined;
let runtime: OrtRuntime | undefined;

/**
 * ONNX Runtime's intra-op threads per evaluation when `workers` processes evaluate at once: the
 * cores divided among them (workers x threads <= cores). Its results do not depend on it
 * (test/prior/onnx.test.ts), so a seed gives the same bytes with any number of workers.
 */
export function threadsPerWorker(workers: number): number {
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, workers)));
}

let threads = threadsPerWorker(1);

/** Sets this process's intra-op threads per evaluation (the pool's workers: threadsPerWorker). */
export function setEngineThreads(n: number): void {
  threads = Math.max(1, Math.floor(n));
}

export function engineThreads(): number {
  return threads;
}

const require = createRequire(import.meta.url);

async function loadOnnxRuntime(): Promise<OrtRuntime> {
  const ort =
    ((await import("onnxruntime-node")) as { default?: Ort }).default ?? (await import("onnxruntime-node"));
  const bindingModule = (await import("onnxruntime-node/dist/binding.js")) as Binding & { default?: Binding };
  const { binding, initOrt } = bindingModule.default ?? bindingModule;
  initOrt();
  const version = (require("onnxruntime-node/package.json") as { version: string }).version;
  // The CUDA provider is not in the npm package; it is present when the user installed it.
  const bin = join(
    dirname(require.resolve("onnxruntime-node/package.json")),
    "bin",
    "napi-v6",
    process.platform,
    process.arch,
  );
  const candidates = existsSync(join(bin, "libonnxruntime_providers_cuda.so"))
    ? [["cuda", "cpu"], ["cpu"]]
    : [["cpu"]];
  const { buildOnnxModel, buildProbeModel } = await import("./onnx-graph.js");
  const probe = buildProbeModel();
  let failure: unknown;
  for (const providers of candidates) {
    try {
      const session = new binding.InferenceSession();
      session.loadModel(
        probe.buffer as ArrayBuffer,
        probe.byteOffset,
        probe.byteLength,
        sessionOptions(providers, 1),
      );
      session.dispose();
      return { Tensor: ort.Tensor, binding, version, providers, buildModel: buildOnnxModel };
    } catch (e) {
      failure = e;
    }
  }
  throw failure;
}

function sessionOptions(providers: string[], intraOp: number) {
  return {
    executionProviders: providers,
    intraOpNumThreads: intraOp,
    interOpNumThreads: 1,
    executionMode: "sequential" as const,
    graphOptimizationLevel: "all" as const,
    // Idle pool threads sleep instead of spinning: the sampler's own work runs between evaluations.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
}

function reason(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * Selects the engine once per process (and the tfjs backend, which the samplers use either way);
 * later calls return the same name. `log` receives one line naming it, with the threads per
 * evaluation when `workers` worker processes evaluate at once.
 */
export async function initEngine(
  choice: string = process.env.SCORERECON_ENGINE || "auto",
  log: (line: string) => void = () => {},
  workers = 1,
): Promise<EngineName> {
  if (chosen) return chosen;
  if (!(ENGINES as readonly string[]).includes(choice))
    throw new UserError(
      `engine must be one of ${ENGINES.join(", ")}, got '${choice}'`,
      "bad_flag",
      "--engine",
    );
  const backend = await initBackend();
  const tfjsLine = `TensorFlow.js ${backend}`;
  let name: EngineName = "tfjs";
  if (choice === "tfjs") log(`scorerecon: inference engine tfjs (${tfjsLine})`);
  else {
    try {
      runtime = await loadOnnxRuntime();
      name = "onnx";
      const n = workers > 1 ? threadsPerWorker(workers) : threads;
      log(
        `scorerecon: inference engine onnx (ONNX Runtime ${runtime.version}, ${runtime.providers[0]}, ${workers > 1 ? `${workers} workers x ` : ""}${n} thread${n === 1 ? "" : "s"} per evaluation)`,
      );
    } catch (e) {
      if (choice === "onnx")
        throw new UserError(
          `ONNX Runtime is not available on this machine (${reason(e)}); use --engine tfjs`,
          "bad_flag",
          "--engine",
        );
      log(`scorerecon: ONNX Runtime is not available (${reason(e)}); inference engine tfjs (${tfjsLine})`);
    }
  }
  chosen = name;
  // Worker processes started from now on take the same engine without probing again.
  process.env.SCORERECON_ENGINE = name;
  return name;
}

class TfjsEngine implements ScoreEngine {
  readonly name = "tfjs";
  constructor(private readonly net: ScoreUNet) {}
  score(x: tf.Tensor4D, t: number[]): tf.Tensor4D {
    return this.net.apply(x, t);
  }
}

type Session = InstanceType<OrtRuntime["binding"]["InferenceSession"]>;

/** Sessions an engine keeps (one per input shape and thread count; a sampler uses one or two). */
const SESSIONS = 4;

class OnnxEngine implements ScoreEngine {
  readonly name = "onnx";
  /** By `threads batch height width`, least recently used first. */
  private readonly sessions = new Map<string, Session>();
  private weights?: Map<string, NamedWeight>;

  constructor(
    private readonly net: ScoreUNet,
    private readonly ort: OrtRuntime,
  ) {}

  /**
   * The session for inputs [batch, height, width]: its model has these dims fixed, so that ONNX
   * Runtime optimises the graph for known shapes (src/prior/onnx-graph.ts).
   */
  private sessionFor(batch: number, height: number, width: number): Session {
    const key = `${threads} ${batch} ${height} ${width}`;
    let session = this.sessions.get(key);
    if (session) {
      this.sessions.delete(key);
      this.sessions.set(key, session);
      return session;
    }
    this.weights ??= new Map(
      [...this.net.variables].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
    );
    const m = this.ort.buildModel(this.net.config, this.weights, { batch, height, width });
    session = new this.ort.binding.InferenceSession();
    session.loadModel(
      m.buffer as ArrayBuffer,
      m.byteOffset,
      m.byteLength,
      sessionOptions(this.ort.providers, threads),
    );
    if (this.sessions.size >= SESSIONS) {
      const [oldest, old] = this.sessions.entries().next().value!;
      old.dispose();
      this.sessions.delete(oldest);
    }
    this.sessions.set(key, session);
    return session;
  }

  score(x: tf.Tensor4D, t: number[]): tf.Tensor4D {
    const [b, h, w] = x.shape;
    const { Tensor } = this.ort;
    const { sde, config } = this.net;
    const feeds: Record<string, InstanceType<Ort["Tensor"]>> = {
      // NHWC with one channel has the bytes of NCHW [B, 1, H, W].
      x: new Tensor("float32", x.dataSync() as Float32Array, [b, 1, h, w]),
      level: new Tensor(
        "float32",
        Float32Array.from(t, (ti) => sde.noiseInput(ti)),
        [b, 1],
      ),
    };
    if (config.scaleBySigma)
      feeds.sigma = new Tensor(
        "float32",
        Float32Array.from(t, (ti) => sde.std(ti)),
        [b],
      );
    const out = this.sessionFor(b, h, w).run(feeds, { score: null }, {}).score as InstanceType<Ort["Tensor"]>;
    return tf.tensor4d(out.data as Float32Array, [b, h, w, 1]);
  }
}

const engines = new WeakMap<ScoreUNet, Map<EngineName, ScoreEngine>>();

/**
 * The engine that evaluates a loaded prior: `name`, or the one initEngine chose (tfjs before it is
 * called). Cached per network. The ONNX graph is built in memory from the network's weights at its
 * first evaluation (no model.onnx file, so never a stale one); a loaded prior's weights never change.
 */
export function engineFor(
  prior: LoadedPrior | { net: ScoreUNet },
  name: EngineName = chosen ?? "tfjs",
): ScoreEngine {
  const { net } = prior;
  let byName = engines.get(net);
  if (!byName) engines.set(net, (byName = new Map()));
  let engine = byName.get(name);
  if (!engine) {
    if (name === "onnx" && !runtime) throw new Error("ONNX Runtime is not loaded (initEngine first)");
    engine = name === "onnx" ? new OnnxEngine(net, runtime!) : new TfjsEngine(net);
    byName.set(name, engine);
  }
  return engine;
}

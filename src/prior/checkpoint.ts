/**
 * Prior checkpoints: a folder with
 * - model.json: TensorFlow.js weights-manifest format (`weightsManifest` naming each tensor's
 *   shape and dtype in weights.bin, as tf.io writes it) plus the network configuration;
 * - weights.bin: the EMA weights, float32, in manifest order;
 * - prior.json: what a user and the reconstruction need — SDE, network, normalisation, modality,
 *   training data, steps, final loss, training time, backend.
 * A training run also keeps train-state.json/.bin (raw weights and Adam moments) for --resume.
 * Every file is written atomically; a missing, truncated or mismatched file is a UserError.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { tf } from "./backend.js";
import { makeSde, type SdeConfig } from "./sde.js";
import { ScoreUNet, type UNetConfig } from "./unet.js";

export interface Normalisation {
  /**
   * "percentile": each volume is divided by its own 99.5th percentile (MRI magnitude);
   * "hu": CT in HU maps to (HU + 1000) / 2000, i.e. attenuation relative to water / 2.
   */
  kind: "percentile" | "hu";
  percentile?: number;
}

export interface PriorInfo {
  format: "scorerecon-prior";
  version: 1;
  modality: "mri" | "ct";
  sde: SdeConfig;
  network: UNetConfig;
  normalisation: Normalisation;
  /** Training crop size. */
  imageSize: number;
  data: string;
  /** Every data source with the slices used (newer priors). */
  dataFiles?: DataFile[];
  /** The augmentations of src/prior/data.ts it was trained with, and the slice orientations. */
  augment?: string[];
  axes?: string[];
  steps: number;
  batch: number;
  /** Threads that computed the gradients (the last run of a resumed training); absent before they could be chosen. */
  threads?: number;
  finalLoss: number | null;
  trainingSeconds: number;
  backend: string;
  command?: string;
  created: string;
}

/** One training data source: a file or folder (or, from the server, a study), and what was used. */
export interface DataFile {
  source: string;
  /** The slice ranges kept (end exclusive), when not all. */
  slices?: string;
  /** 2-D slices it gave over every orientation. */
  count: number;
}

interface ModelJson {
  format: "scorerecon-score-unet";
  modelTopology: { network: UNetConfig; sde: SdeConfig };
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

async function writeWeights(
  dir: string,
  base: string,
  named: tf.NamedTensorMap,
): Promise<tf.io.WeightsManifestEntry[]> {
  const { data, specs } = await tf.io.encodeWeights(named);
  await writeFileAtomic(join(dir, `${base}.bin`), new Uint8Array(data));
  return specs;
}

function readWeights(dir: string, base: string, specs: tf.io.WeightsManifestEntry[]): tf.NamedTensorMap {
  const file = join(dir, `${base}.bin`);
  if (!existsSync(file)) throw new UserError(`prior ${dir} has no ${base}.bin`, "bad_model", "--model");
  const bytes = readFileSync(file);
  const need = specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== need)
    throw new UserError(
      `prior ${dir}: ${base}.bin has ${bytes.length} bytes, its manifest needs ${need} (truncated or mismatched)`,
      "bad_model",
      "--model",
    );
  return tf.io.decodeWeights(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    specs,
  );
}

export async function saveCheckpoint(
  dir: string,
  net: ScoreUNet,
  weights: Map<string, tf.Tensor>,
  info: PriorInfo,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const named: tf.NamedTensorMap = Object.fromEntries(weights);
  const specs = await writeWeights(dir, "weights", named);
  const model: ModelJson = {
    format: "scorerecon-score-unet",
    modelTopology: { network: net.config, sde: net.sde.config },
    weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
  };
  await writeFileAtomic(join(dir, "model.json"), Buffer.from(JSON.stringify(model, null, 1) + "\n"));
  await writeFileAtomic(join(dir, "prior.json"), Buffer.from(JSON.stringify(info, null, 2) + "\n"));
}

function readJson<T>(file: string, what: string): T {
  if (!existsSync(file)) throw new UserError(`${what}: ${file} is missing`, "bad_model", "--model");
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (e) {
    throw new UserError(
      `${what}: ${file} is not valid JSON (${(e as Error).message})`,
      "bad_model",
      "--model",
    );
  }
}

export interface LoadedPrior {
  net: ScoreUNet;
  info: PriorInfo;
}

/** A prior folder's description (prior.json) and network manifest, checked, without weights. */
export function readPriorInfo(dir: string): { info: PriorInfo; model: ModelJson } {
  if (!existsSync(dir)) throw new UserError(`prior ${dir} does not exist`, "bad_model", "--model");
  const model = readJson<ModelJson>(join(dir, "model.json"), `prior ${dir}`);
  const info = readJson<PriorInfo>(join(dir, "prior.json"), `prior ${dir}`);
  if (model.format !== "scorerecon-score-unet" || info.format !== "scorerecon-prior")
    throw new UserError(
      `prior ${dir} is not a scorerecon prior (model.json/prior.json format)`,
      "bad_model",
      "--model",
    );
  return { info, model };
}

/** Loads a prior folder; the network holds the EMA weights. */
export function loadPrior(dir: string): LoadedPrior {
  const { info, model } = readPriorInfo(dir);
  const specs = model.weightsManifest.flatMap((g) => g.weights);
  const weights = readWeights(dir, "weights", specs);
  const net = new ScoreUNet(model.modelTopology.network, makeSde(model.modelTopology.sde));
  assignWeights(net, weights, dir);
  return { net, info };
}

export function assignWeights(net: ScoreUNet, weights: tf.NamedTensorMap, source: string): void {
  const names = new Set(Object.keys(weights));
  for (const [name, v] of net.variables) {
    const w = weights[name];
    if (!w || w.shape.join("x") !== v.shape.join("x"))
      throw new UserError(
        `prior ${source} does not match its network: parameter '${name}' ${w ? `has shape ${w.shape.join("x")}, expected ${v.shape.join("x")}` : "is missing"}`,
        "bad_model",
        "--model",
      );
    v.assign(w);
    names.delete(name);
  }
  for (const w of Object.values(weights)) w.dispose();
  if (names.size)
    throw new UserError(
      `prior ${source} has parameters its network does not: ${[...names].slice(0, 3).join(", ")}`,
      "bad_model",
      "--model",
    );
}

/** Training state for --resume: raw weights, EMA weights and optimizer state. */
export async function saveTrainState(
  dir: string,
  state: {
    step: number;
    seconds: number;
    losses: number;
    raw: tf.NamedTensorMap;
    ema: tf.NamedTensorMap;
    optimizer: tf.NamedTensorMap;
  },
): Promise<void> {
  const named: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(state.raw)) named[`raw/${k}`] = v;
  for (const [k, v] of Object.entries(state.ema)) named[`ema/${k}`] = v;
  for (const [k, v] of Object.entries(state.optimizer)) named[`opt/${k}`] = v;
  const specs = await writeWeights(dir, "train-state", named);
  await writeFileAtomic(
    join(dir, "train-state.json"),
    Buffer.from(
      JSON.stringify({ step: state.step, seconds: state.seconds, losses: state.losses, specs }) + "\n",
    ),
  );
}

export function loadTrainState(dir: string) {
  const meta = readJson<{
    step: number;
    seconds: number;
    losses: number;
    specs: tf.io.WeightsManifestEntry[];
  }>(join(dir, "train-state.json"), `training state in ${dir}`);
  const all = readWeights(dir, "train-state", meta.specs);
  const pick = (prefix: string) =>
    Object.fromEntries(
      Object.entries(all)
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k.slice(prefix.length), v]),
    ) as tf.NamedTensorMap;
  return {
    step: meta.step,
    seconds: meta.seconds,
    losses: meta.losses,
    raw: pick("raw/"),
    ema: pick("ema/"),
    optimizer: pick("opt/"),
  };
}

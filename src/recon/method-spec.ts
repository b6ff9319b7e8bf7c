/**
 * What a reconstruction method is: the context it runs in, its parameters declared once with
 * their types and ranges (ParamSpec), and the declaration helpers. The methods themselves are in
 * classical-methods.ts and score-methods.ts; methods.ts lists them and checks requests.
 */
import { z } from "zod";
import type { Acquisition, ForwardModel, Modality } from "./acquisition.js";

export type ParamValue = number | string;
export type Params = Record<string, ParamValue>;

/**
 * One method parameter, declared once with its method: its type, the range a user could want,
 * its default and a line of help. This declaration checks `name:key=value` on the command line
 * and `methods[i].params` of a job (methodRequest), and makes the API's schema (paramsSchema).
 */
export type ParamSpec =
  | NumberSpec
  | ({ help: string } & (
      | { kind: "choice"; choices: readonly string[]; default: string }
      /** Free text; `api: false` keeps it off the job API (the prior folder: the API chooses priors by name). */
      | { kind: "string"; default: string; maxLength: number; api?: false }
    ));
export interface NumberSpec {
  kind: "integer" | "number";
  min: number;
  max: number;
  default: number;
  help: string;
}

export interface MethodContext {
  model: ForwardModel;
  y: Float32Array;
  rows: number;
  cols: number;
  /** The slice's index in its volume (score-based methods draw slice k's noise with seed + k). */
  slice: number;
  /** Where the caller chose the prior (`--model`, or a job's `model`): the words of prior errors. */
  priorField?: string;
  onIteration?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ReconMethod {
  name: string;
  modalities: readonly Modality[];
  /** One line for `--help` and docs/methods.md. */
  summary: string;
  /** Its parameters, by name (the order of `--help` and the API schema). */
  params: Readonly<Record<string, ParamSpec>>;
  /** Defaults that differ for one modality (tuned per modality), over the declared ones. */
  modalityDefaults?: Partial<Record<Modality, Params>>;
  /** Defaults for a kind of acquisition (e.g. sparse-view CT), over the modality's. */
  acquisitionDefaults?: readonly AcquisitionDefaults[];
  /** Uses a trained prior (the inference engine must be started first: initEngine). */
  needsPrior?: boolean;
  /** The image, or for posterior sampling with samples > 1 the mean and the per-pixel std. */
  run(ctx: MethodContext, params: Params): Float32Array | { image: Float32Array; std: Float32Array };
}

/**
 * Defaults tuned for a kind of acquisition: they apply where the request is made for an
 * acquisition of that kind (methodRequest with the acquisition), over the modality's defaults.
 */
export interface AcquisitionDefaults {
  /** The kind in words, for the API document and docs/methods.md: "CT <= 32 views". */
  label: string;
  applies: (acq: Acquisition) => boolean;
  params: Params;
}

export const int = (min: number, max: number, value: number, help: string): NumberSpec => ({
  kind: "integer",
  min,
  max,
  default: value,
  help,
});
export const num = (min: number, max: number, value: number, help: string): NumberSpec => ({
  kind: "number",
  min,
  max,
  default: value,
  help,
});
export const lambda = (value: number): NumberSpec => num(0, 1e3, value, "regularisation weight");
export const iterations = (value: number, help = "iterations"): NumberSpec => int(1, 100_000, value, help);

/** A parameter as a zod schema: its type and range, from its declaration. */
export function paramSchema(spec: ParamSpec): z.ZodType<ParamValue> {
  const described = <T extends z.ZodType<ParamValue>>(t: T) =>
    t.meta({ description: spec.help, default: spec.default });
  if (spec.kind === "choice") return described(z.enum(spec.choices as [string, ...string[]]));
  if (spec.kind === "string") return described(z.string().max(spec.maxLength));
  const n = spec.kind === "integer" ? z.number().int() : z.number();
  return described(n.min(spec.min).max(spec.max));
}

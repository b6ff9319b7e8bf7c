/**
 * The reconstruction methods the pipeline can run, by name, with their parameters and defaults.
 * A method request is written `name` or `name:key=value:key=value` (e.g. `tv:lambda=0.003`).
 * Every method returns a real image in operator units (MRI: the magnitude). The methods are
 * declared in classical-methods.ts and score-methods.ts over the types of method-spec.ts.
 */
import { basename } from "node:path";
import { z } from "zod";
import { UserError } from "../errors.js";
import { describeAcquisition, type Acquisition, type Modality } from "./acquisition.js";
import { CLASSICAL_METHODS } from "./classical-methods.js";
import {
  paramSchema,
  type ParamSpec,
  type Params,
  type ParamValue,
  type ReconMethod,
} from "./method-spec.js";
import { SCORE_METHODS } from "./score-methods.js";

export interface MethodRequest {
  name: string;
  params: Params;
}

export const METHODS: readonly ReconMethod[] = [...CLASSICAL_METHODS, ...SCORE_METHODS];

export function findMethod(name: string, field = "method"): ReconMethod {
  const m = METHODS.find((x) => x.name === name);
  if (!m)
    throw new UserError(
      `unknown method '${name}' (known: ${METHODS.map((x) => x.name).join(", ")})`,
      "bad_method",
      field,
    );
  return m;
}

/**
 * What a request is made for: the acquisition (its defaults are then those of its kind too), or
 * only the modality (to check a request before the acquisition is known).
 */
export type RequestTarget = Modality | Acquisition;

export const targetModality = (target: RequestTarget): Modality =>
  typeof target === "string" ? target : target.modality;

/**
 * The declared defaults of a method, with those of the modality over them and, for an
 * acquisition, those of its kind over those (ReconMethod.acquisitionDefaults).
 */
export function methodDefaults(method: ReconMethod, target: RequestTarget): Params {
  const params: Params = {};
  for (const [key, spec] of Object.entries(method.params)) params[key] = spec.default;
  const kinds =
    typeof target === "string" ? [] : (method.acquisitionDefaults ?? []).filter((d) => d.applies(target));
  return Object.assign(
    params,
    method.modalityDefaults?.[targetModality(target)],
    ...kinds.map((d) => d.params),
  );
}

/**
 * The defaults a method has beyond its declared ones, by the kind they are for ("CT",
 * "CT <= 32 views"), in the order they apply: for the API document and docs/methods.md.
 */
export function tunedDefaults(method: ReconMethod): (readonly [string, Params])[] {
  return [
    ...Object.entries(method.modalityDefaults ?? {}).map(([m, p]) => [m.toUpperCase(), p] as const),
    ...(method.acquisitionDefaults ?? []).map((d) => [d.label, d.params] as const),
  ];
}

/** A method's `params` object as a zod schema (every key optional, no others). `api`: without API-only-off keys. */
export function paramsSchema(method: ReconMethod, api = false) {
  const shape: Record<string, z.ZodOptional<z.ZodType<ParamValue>>> = {};
  for (const [key, spec] of Object.entries(method.params))
    if (!api || !(spec.kind === "string" && spec.api === false)) shape[key] = paramSchema(spec).optional();
  return z.object(shape).strict();
}

/** What a parameter takes, in words: "an integer in [1, 2000]", "one of tv, ls". */
function expected(spec: ParamSpec): string {
  if (spec.kind === "choice") return `one of ${spec.choices.join(", ")}`;
  if (spec.kind === "string") return `text of at most ${spec.maxLength} characters`;
  return `${spec.kind === "integer" ? "an integer" : "a number"} in [${spec.min}, ${spec.max}]`;
}

/** A parameter given as text (`key=value` on the command line) in its declared type. */
function fromText(spec: ParamSpec, text: string): ParamValue {
  if (spec.kind !== "integer" && spec.kind !== "number") return text;
  return text.trim() === "" ? NaN : Number(text);
}

/**
 * A checked method request for `target` (an acquisition, or only its modality: RequestTarget):
 * a known method for the modality, known parameter names, each value of its declared type and
 * range (ParamSpec). `field` names the place in the errors (the CLI's
 * `method`, or a job's `methods[1]`; a parameter is `<field>.<key>`). `text`: values are the
 * command line's text, converted to their declared type first; otherwise (a JSON job) they must
 * already have it. `api`: the parameters of the API's schema (paramsSchema), not the prior's folder.
 */
export function methodRequest(
  name: string,
  given: Record<string, string | number>,
  target: RequestTarget,
  field = "method",
  text = false,
  api = false,
): MethodRequest {
  const method = findMethod(name, field);
  const modality = targetModality(target);
  // The parameters this caller may give (the API's leave out the prior's folder).
  const takes = Object.keys(paramsSchema(method, api).shape);
  if (!method.modalities.includes(modality))
    throw new UserError(
      `method '${name}' does not apply to ${modality.toUpperCase()} (it is for ${method.modalities.join(", ")})`,
      "bad_method",
      field,
    );
  const params = methodDefaults(method, target);
  for (const [key, raw] of Object.entries(given)) {
    const spec = takes.includes(key) ? method.params[key] : undefined;
    if (!spec)
      throw new UserError(
        `method '${name}' has no parameter '${key}' (it takes: ${takes.join(", ") || "none"})`,
        "bad_method",
        field,
      );
    const value = text && typeof raw === "string" ? fromText(spec, raw) : raw;
    if (!paramSchema(spec).safeParse(value).success)
      throw new UserError(
        `method '${name}': ${key} must be ${expected(spec)}, got ${typeof raw === "string" ? `'${raw}'` : String(raw)}`,
        "bad_method",
        `${field}.${key}`,
      );
    params[key] = value;
  }
  return { name, params };
}

/**
 * What a derived series says of its making (DICOM DerivationDescription): the method, its
 * settings and the acquisition. A prior is named by its folder, never by its full path; empty
 * values are left out.
 */
export function describeDerivation(request: MethodRequest, acq: Acquisition): string {
  const settings = Object.entries(request.params)
    .filter(([, v]) => v !== "")
    .map(([k, v]) => `${k}=${k === "model" ? basename(String(v)) : v}`)
    .join(" ");
  return `scorerecon ${request.name}${settings ? ` (${settings})` : ""} from ${describeAcquisition(acq)}`;
}

/** Parses `tv:lambda=0.003,fbp` into requests, checking names, keys and values. */
/**
 * A run names each method once (its results are stored and written under its name): the
 * first repeat is a UserError at `field(i)`.
 */
export function checkListedOnce(names: readonly string[], field: (i: number) => string, code: string): void {
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) throw new UserError(`${field(i)}: '${n}' is listed twice`, code, field(i));
  });
}

export function parseMethods(list: string, target: RequestTarget): MethodRequest[] {
  const requests = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const [name, ...pairs] = item.split(":");
      const given: Record<string, string> = {};
      for (const pair of pairs) {
        const [key, value] = pair.split("=");
        if (value === undefined)
          throw new UserError(`method '${name}': '${pair}' must look like key=value`, "bad_method", "method");
        given[key] = value;
      }
      return methodRequest(name, given, target, "method", true);
    });
  if (requests.length === 0) throw new UserError("no method given", "bad_method", "method");
  return requests;
}

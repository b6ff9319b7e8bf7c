/**
 * Priors by their API name: the shipped ones (models/<name>) and those trained into the data
 * folder (<data dir>/models/<name>). Job plans and answers carry the name; the folder is looked
 * up only where a job runs.
 */
import { existsSync, readdirSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { UserError } from "../src/errors.js";
import { packageRoot } from "../src/package-root.js";
import { readPriorInfo } from "../src/prior/checkpoint.js";
import type { MethodRequest } from "../src/recon/methods.js";

/** Shipped priors (models/) and user-trained ones (<data dir>/models), by name. */
export function listModels(dataDir: string) {
  const out: { name: string; shipped: boolean; prior: unknown }[] = [];
  for (const [root, shipped] of [
    [join(packageRoot(), "models"), true],
    [join(dataDir, "models"), false],
  ] as const) {
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root).sort()) {
      if (!existsSync(join(root, name, "prior.json"))) continue;
      try {
        out.push({ name, shipped, prior: readPriorInfo(join(root, name)).info });
      } catch {
        // A damaged user model is left out of the list rather than breaking it.
      }
    }
  }
  return out;
}

/** The folder of the model with this name (a user-trained one first), or undefined. */
export function modelDir(dataDir: string, name: string): string | undefined {
  return findModel(dataDir, name)?.dir;
}

/** The model with this name (a user-trained one first) and whether it is shipped. */
export function findModel(dataDir: string, name: string): { dir: string; shipped: boolean } | undefined {
  if (!/^[\w.-]{1,64}$/.test(name) || name.startsWith(".")) return undefined;
  for (const [root, shipped] of [
    [join(dataDir, "models"), false],
    [join(packageRoot(), "models"), true],
  ] as const)
    if (existsSync(join(root, name, "prior.json"))) return { dir: join(root, name), shipped };
  return undefined;
}

/** Whether a shipped prior has this name (a user prior may not take it). */
export const isShipped = (name: string) =>
  /^[\w.-]{1,64}$/.test(name) && existsSync(join(packageRoot(), "models", name, "prior.json"));

/**
 * A planned method as it runs: its prior's name (params.model) becomes the prior's folder. An
 * empty name is the shipped prior of the modality; a folder (plans written before priors were
 * named) stays as it is.
 */
export function withModelDir(request: MethodRequest, dataDir: string): MethodRequest {
  const name = request.params.model;
  if (typeof name !== "string" || name === "" || isAbsolute(name)) return request;
  const dir = modelDir(dataDir, name);
  if (!dir) throw new UserError(`model: no model named '${name}'`, "not_found", "model");
  return { ...request, params: { ...request.params, model: dir } };
}

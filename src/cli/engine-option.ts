/** `--engine`: which engine evaluates a prior's network (src/prior/engine.ts), on every command that does. */
import { Option } from "commander";
import { ENGINES, initEngine, type EngineChoice } from "../prior/engine.js";
import { parseChoice } from "./options.js";

export const engineOption = () =>
  new Option(
    "--engine <name>",
    `network inference: ${ENGINES.join("|")} (auto: ONNX Runtime when it loads, else TensorFlow.js; env SCORERECON_ENGINE)`,
  );

/** The engine asked for (the flag, else SCORERECON_ENGINE, else auto), checked before any work starts. */
export function engineChoice(flag: string | undefined): EngineChoice {
  const env = process.env.SCORERECON_ENGINE;
  if (flag === undefined && env) return parseChoice("SCORERECON_ENGINE", env, ENGINES);
  return parseChoice("--engine", flag ?? "auto", ENGINES);
}

/**
 * Selects the engine once, for `workers` worker processes evaluating at once; the line naming it goes to
 * stderr (through `log` when given).
 */
export function startEngine(
  flag: string | undefined,
  workers = 1,
  log: (line: string) => void = (line) => process.stderr.write(line + "\n"),
) {
  return initEngine(engineChoice(flag), log, workers);
}

/**
 * `scorerecon`: one command per job, composing through files (after BART's command-line tools).
 * User mistakes print one line on stderr and exit 2; internal failures print an id, write the
 * stack to a log file and exit 1.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { UserError } from "../errors.js";
import { registerCommands } from "./commands.js";
import { registerPriorCommands } from "./prior-commands.js";
import { registerServe, registerWorker } from "./serve-command.js";

export async function main(argv: string[]): Promise<number> {
  const program = new Command("scorerecon")
    .description(
      "Score-based reconstruction of undersampled MRI and sparse-view CT, with classical baselines",
    )
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // Commander's own errors (unknown option, missing value) in one line, like every other error.
      outputError: (s, write) => write(`scorerecon: ${s.trim()} (run with --help for usage)\n`),
    });
  registerCommands(program);
  registerPriorCommands(program);
  registerServe(program);
  registerWorker(program);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander has already printed its message; help and version are not errors.
    return err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.version"
      ? 0
      : 2;
  }
  if (err instanceof UserError) {
    process.stderr.write(`scorerecon: error: ${err.message}\n`);
    return 2;
  }
  const id = randomBytes(4).toString("hex");
  const log = join(tmpdir(), `scorerecon-${id}.log`);
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  try {
    writeFileSync(log, `${new Date().toISOString()} ${detail}\n`);
  } catch {
    // The log is a courtesy; the message below still names the failure.
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`scorerecon: internal error ${id}: ${message} (details in ${log})\n`);
  return 1;
}

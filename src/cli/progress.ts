/**
 * A progress bar on stderr for anything that takes more than a second. It draws only on a
 * terminal, so piped output (`--json | jq`) and logs stay clean.
 */
import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, label?: string): void;
  stop(): void;
}

export function progressBar(total: number, title: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${title} [{bar}] {percentage}% | {value}/{total} | {label} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: "" });
  return {
    update: (done, label = "") => bar.update(done, { label }),
    stop: () => bar.stop(),
  };
}

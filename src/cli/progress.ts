/**
 * Progress bars on stderr for anything that takes more than a second. They draw only on a
 * terminal, so piped output (`--json | jq`) and logs stay clean.
 */
import cliProgress from "cli-progress";

export interface Progress {
  /** `total` changes the bar's total (a batch learns its size as it goes). */
  update(done: number, label?: string, total?: number): void;
  /** Writes text to stdout; on a terminal shared with the bars, above them instead of through them. */
  print(text: string): void;
  stop(): void;
}

const print = (text: string) => void process.stdout.write(text);

const format = (title: string) =>
  `${title.padEnd(11)} [{bar}] {percentage}% | {value}/{total} | {label} | ETA {eta_formatted}`;

export function progressBar(total: number, title: string, enabled = process.stderr.isTTY === true): Progress {
  const [bar] = progressBars([title], enabled);
  bar.update(0, "", total);
  return bar;
}

/** Several bars drawn together (e.g. overall and current slice); one stop() clears them all. */
export function progressBars(titles: string[], enabled = process.stderr.isTTY === true): Progress[] {
  if (!enabled) return titles.map(() => ({ update() {}, print, stop() {} }));
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      // Before the first progress the rate is unknown: "--", not cli-progress's "NFs".
      formatTime: (t, options, round) =>
        typeof t === "number" ? cliProgress.Format.TimeFormat(t, options, round) : "--",
    },
    cliProgress.Presets.shades_classic,
  );
  return titles.map((title) => {
    const bar = multi.create(1000, 0, { label: "" }, { format: format(title) });
    return {
      update: (done, label = "", t) => {
        if (t !== undefined && t !== bar.getTotal()) bar.setTotal(t);
        bar.update(done, { label });
      },
      print: (text) => {
        if (!process.stdout.isTTY) return print(text);
        multi.log(text);
        multi.update(); // draws the text now: a stop() right after must not drop it
      },
      stop: () => multi.stop(),
    };
  });
}

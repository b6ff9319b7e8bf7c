/**
 * The server of `npm run bench:load` (bench/load.ts), in a process of its own: the same app as
 * `scorerecon serve`, with its event loop watched. It reports its port over IPC, and on "stats"
 * the event loop's delay (perf_hooks histogram) and its longest stalls with when they began
 * (seconds since the last "reset").
 * Usage (by bench/load.ts): node dist/bench/load-server.js DATA_DIR WORKERS
 */
import type { AddressInfo } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createServer, listen } from "../server/app.js";

const [dataDir, workers] = process.argv.slice(2);
const histogram = monitorEventLoopDelay({ resolution: 10 });
let t0 = performance.now();
/** Stalls over 50 ms: [seconds since the start when it began, its length in ms]. */
const stalls: [number, number][] = [];
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = now - last - 10;
  if (late > 50) stalls.push([(last - t0) / 1000, late]);
  last = now;
}, 10).unref();

const s = createServer({ dataDir, workers: Number(workers), jobRateLimit: 100_000 });
await s.ready;
const server = await listen(s, 0, "127.0.0.1");
histogram.enable();
process.send!({ port: (server.address() as AddressInfo).port });
process.on("message", (m: string) => {
  if (m === "reset") {
    histogram.reset();
    t0 = performance.now();
    stalls.length = 0;
  }
  if (m === "stats")
    process.send!({
      maxMs: histogram.max / 1e6,
      p99Ms: histogram.percentile(99) / 1e6,
      meanMs: histogram.mean / 1e6,
      stalls: [...stalls].sort((a, b) => b[1] - a[1]).slice(0, 8),
      since: (performance.now() - t0) / 1000,
    });
});
process.on("SIGTERM", () => {
  server.close();
  void s.close().then(() => process.exit(0));
});

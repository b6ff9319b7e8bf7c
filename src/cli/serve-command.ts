/** `scorerecon serve`: the HTTP API (server/) and the viewer, on one port. */
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { parseNumber } from "./options.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the reconstruction server (API under /api, viewer at /)")
    .option("--port <port>", "TCP port (0: any free port)", "8080")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--data-dir <dir>", "uploads, jobs and results", join(homedir(), ".scorerecon", "data"))
    .option("--workers <N>", "reconstruction worker threads (default: the machine's cores)")
    .option("--demo", "preload a demo study (brain phantom) and a comparison job")
    .action(async (o) => {
      const port = parseNumber("--port", o.port, { min: 0, integer: true });
      const workers = o.workers ? parseNumber("--workers", o.workers, { min: 1, integer: true }) : undefined;
      // The server is loaded only by this command: the other commands start without Express.
      const { createServer, listen } = await import("../../server/app.js");
      const { ensureDemo } = await import("../../server/demo.js");
      const token = process.env.SCORERECON_TOKEN || undefined;
      const redisUrl = process.env.REDIS_URL || undefined;
      const s = createServer({
        dataDir: o.dataDir,
        workers,
        token,
        redisUrl,
        log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      });
      await s.ready;
      const server = await listen(s, port, o.host);
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${bound}/`;
      process.stdout.write(
        `scorerecon server: open ${url} (API ${url}api, data in ${o.dataDir}${token ? ", bearer token required" : ""}${redisUrl ? ", jobs on the Redis queue" : ""})\n`,
      );
      if (o.demo) {
        const demo = await ensureDemo(s);
        process.stdout.write(`demo study ${demo.study}, demo job ${demo.job}\n`);
      }
      const stop = () => {
        process.stdout.write("scorerecon server: stopping (running jobs resume at the next start)\n");
        server.close();
        server.closeAllConnections();
        void s.close().then(() => process.exit(0));
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("take slice tasks from the Redis queue (server jobs, reconstruct --queue) and run them")
    .requiredOption("--redis <url>", "the Redis server, e.g. redis://queue-host:6379")
    .requiredOption("--data-dir <dir>", "the shared data folder, as mounted on this machine")
    .option("--concurrency <N>", "slices at once, each in a worker thread", "1")
    .option(
      "--lock-ms <ms>",
      "how long a task stays with a worker that stopped answering before another takes it",
      "30000",
    )
    .action(async (o) => {
      const concurrency = parseNumber("--concurrency", o.concurrency, { min: 1, integer: true });
      const lockDuration = parseNumber("--lock-ms", o.lockMs, { min: 1000, integer: true });
      const { startSliceWorker } = await import("../queue/slice-queue.js");
      const worker = await startSliceWorker({
        redisUrl: o.redis,
        dataDir: o.dataDir,
        concurrency,
        lockDuration,
        log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      });
      process.stdout.write(
        `scorerecon worker: ${concurrency} slice(s) at once from ${o.redis}, data in ${o.dataDir}\n`,
      );
      const stop = () => void worker.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}

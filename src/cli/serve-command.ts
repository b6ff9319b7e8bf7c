/** `scorerecon serve`: the HTTP API (server/) and the viewer, on one port. */
import { createServer as httpServer, type RequestListener, type Server } from "node:http";
import { availableParallelism, homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { UserError } from "../errors.js";
import { DEFAULT_LIMITS, MIB } from "../../server/limits.js";
import { engineChoice, engineOption, startEngine } from "./engine-option.js";
import { checkFolder, parseInteger, parseNumber } from "./options.js";
import { WORKERS } from "../recon/pool.js";

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the reconstruction server (API under /api, viewer at /)")
    .option("--port <port>", "TCP port (0: any free port)", "8080")
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--data-dir <dir>", "uploads, jobs and results", join(homedir(), ".scorerecon", "data"))
    .option("--workers <N>", "reconstruction worker processes (default: the machine's cores)")
    .option(
      "--worker-memory <MiB>",
      "heap limit of each worker process of the embedded pool, in MiB (default: half the memory shared by the workers, 256-4096); not with REDIS_URL, where `scorerecon worker` processes run the slices",
    )
    .option(
      "--max-file-mib <MiB>",
      "largest uploaded file (and zip entry), in MiB",
      String(DEFAULT_LIMITS.fileSize / MIB),
    )
    .option("--max-files <N>", "most files in one upload, zip entries included", String(DEFAULT_LIMITS.files))
    .option(
      "--max-decompressed-mib <MiB>",
      "most that one upload may expand to when decompressed (zip, gzip, deflated or compressed DICOM), in MiB",
      String(DEFAULT_LIMITS.decompressed / MIB),
    )
    .option("--demo", "preload a demo study (brain phantom) and a comparison job")
    .addOption(engineOption())
    .action(async (o) => {
      // Every check before anything is created or started.
      const port = parseNumber("--port", o.port, { min: 0, max: 65535, integer: true });
      const workers = o.workers ? parseInteger("--workers", o.workers, WORKERS) : undefined;
      const workerMemoryMb = o.workerMemory
        ? parseNumber("--worker-memory", o.workerMemory, { min: 64, max: 1 << 20, integer: true })
        : undefined;
      const mib = (flag: string, v: string) =>
        parseNumber(flag, v, { min: 1, max: 1 << 20, integer: true }) * MIB;
      const limits = {
        fileSize: mib("--max-file-mib", o.maxFileMib),
        files: parseNumber("--max-files", o.maxFiles, { min: 1, max: 1_000_000, integer: true }),
        decompressed: mib("--max-decompressed-mib", o.maxDecompressedMib),
      };
      engineChoice(o.engine);
      // The server creates its data folder when missing; the worker reads the shared one.
      checkFolder("--data-dir", o.dataDir);
      const token = process.env.SCORERECON_TOKEN || undefined;
      const redisUrl = process.env.REDIS_URL || undefined;
      // With Redis there is no local pool: the queue's `scorerecon worker` processes run the slices.
      if (redisUrl && workerMemoryMb !== undefined)
        throw new UserError(
          "--worker-memory: is for the embedded pool; with REDIS_URL set, slices run on `scorerecon worker` processes",
          "bad_flag",
          "--worker-memory",
        );
      const { checkRedis, redisOutages } = await import("../queue/redis-connection.js");
      if (redisUrl) {
        await checkRedis(redisUrl, "REDIS_URL");
        redisOutages(redisUrl).log = log;
      }
      // The worker processes createServer starts evaluate priors on this engine (with Redis, the queue
      // workers do), named in the start line; a failure to load it is the only line.
      const engineLines: string[] = [];
      if (!redisUrl)
        await startEngine(o.engine, workers ?? availableParallelism(), (l) => engineLines.push(l));
      // The port is taken before the data folder is opened: a second server on a port in use
      // fails here, before it re-queues the jobs of a data folder that another server may use.
      // Until the app is attached, every request is answered 503 (none waits unanswered).
      let handler: RequestListener = starting;
      const server = await bind(port, o.host, (req, res) => handler(req, res));
      // The server is loaded only by this command: the other commands start without Express.
      let s: import("../../server/app.js").ScoreReconServer;
      try {
        const { createServer } = await import("../../server/app.js");
        s = createServer({ dataDir: o.dataDir, workers, workerMemoryMb, token, redisUrl, log, limits });
      } catch (e) {
        server.close();
        throw e;
      }
      handler = s.app;
      const shutdown = async () => {
        server.close();
        server.closeAllConnections();
        await s.close();
      };
      let stopping = false;
      const stop = () => {
        // A second Ctrl-C does not wait for the first one's clean stop.
        if (stopping) return void process.exit(1);
        stopping = true;
        process.stdout.write("scorerecon server: stopping (running jobs resume at the next start)\n");
        void shutdown().then(() => process.exit(0));
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      let demo: { study: string; job: string } | undefined;
      try {
        await s.ready;
        if (o.demo) {
          const { ensureDemo } = await import("../../server/demo.js");
          demo = await ensureDemo(s);
        }
      } catch (e) {
        // Nothing is left listening or running behind the error message.
        await shutdown().catch(() => {});
        throw e;
      }
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${bound}/`;
      process.stdout.write(
        `scorerecon server: open ${url} (API ${url}api, data in ${o.dataDir}${token ? ", bearer token required" : ""}${redisUrl ? ", jobs on the Redis queue" : ""})${engineNote(engineLines)}\n`,
      );
      if (demo) process.stdout.write(`demo study ${demo.study}, demo job ${demo.job}\n`);
    });
}

/** The answer to every request before the app is attached (the app's /readyz says 503 until ready). */
const starting: RequestListener = (_req, res) => {
  const body = JSON.stringify({ error: { code: "starting", message: "the server is starting; try again" } });
  res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "1", Connection: "close" });
  res.end(body);
};

/** The engine line, for the end of a start line: "; inference engine onnx (...)". */
const engineNote = (lines: string[]) => lines.map((l) => `; ${l.replace(/^scorerecon: /, "")}`).join("");

/** Listens on port and host; a port in use or not allowed, or a host not here, is a UserError. */
function bind(port: number, host: string, listener: RequestListener): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = httpServer(listener);
    server.once("error", (e: NodeJS.ErrnoException) => {
      server.close();
      const reason: Record<string, [string, string]> = {
        EADDRINUSE: ["--port", "address already in use"],
        EACCES: ["--port", "permission denied (ports below 1024 need privileges)"],
        EADDRNOTAVAIL: ["--host", "not an address of this machine"],
        ENOTFOUND: ["--host", "unknown host"],
        EAI_AGAIN: ["--host", "unknown host"],
      };
      const r = e.code ? reason[e.code] : undefined;
      if (!r) return reject(e);
      const [flag, why] = r;
      reject(new UserError(`${flag} ${flag === "--port" ? port : host}: ${why}`, "bad_flag", flag));
    });
    server.listen(port, host, () => resolve(server));
  });
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description(
      "take slice tasks (server jobs, reconstruct --queue) and trainings (POST /api/models) from the Redis queue and run them",
    )
    .requiredOption("--redis <url>", "the Redis server, e.g. redis://queue-host:6379")
    .requiredOption("--data-dir <dir>", "the shared data folder, as mounted on this machine")
    .option(
      "--concurrency <N>",
      "slices at once, each in a worker process (and, beside them, one training at a time, in a process of its own)",
      "1",
    )
    .option(
      "--lock-ms <ms>",
      "how long a task stays with a worker that stopped answering before another takes it",
      "30000",
    )
    .addOption(engineOption())
    .action(async (o) => {
      const concurrency = parseInteger("--concurrency", o.concurrency, WORKERS);
      const lockDuration = parseNumber("--lock-ms", o.lockMs, { min: 1000, max: 3_600_000, integer: true });
      checkFolder("--data-dir", o.dataDir, true);
      const { checkRedis, redactRedisUrl } = await import("../queue/redis-connection.js");
      const { startSliceWorker } = await import("../queue/worker.js");
      // Redis is checked first (one line and exit 2 when it cannot be reached); a later outage is
      // one log line, and BullMQ reconnects.
      await checkRedis(o.redis, "--redis");
      const engineLines: string[] = [];
      await startEngine(o.engine, concurrency, (l) => engineLines.push(l));
      const worker = await startSliceWorker({
        redisUrl: o.redis,
        dataDir: o.dataDir,
        concurrency,
        lockDuration,
        log,
      });
      process.stdout.write(
        `scorerecon worker: ${concurrency} slice(s) and one training at once from ${redactRedisUrl(o.redis)}, data in ${o.dataDir}${engineNote(engineLines)}\n`,
      );
      let stopping = false;
      const stop = () => {
        if (stopping) return void process.exit(1);
        stopping = true;
        void worker.close().then(() => process.exit(0));
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
}

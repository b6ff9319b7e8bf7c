/**
 * Connections to Redis for BullMQ: one outage reporter per URL (one line when the first connection
 * fails, one when all are back), the connections that report to it, and the check the commands
 * make before they start.
 */
import { Redis } from "ioredis";
import { UserError } from "../errors.js";

/** The URL with its password, if any, hidden: for messages and logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}

/**
 * Lost and regained connections to one Redis server, for every connection of this process to it
 * (queues, workers, subscribers): one line when the first of them fails, one when all are back,
 * never one per retry. ioredis prints a stack trace for every failed retry of a connection without
 * an `error` listener, and BullMQ one for every error of a queue or worker without one:
 * `redisConnection` and `watchRedisErrors` attach theirs.
 */
export class RedisOutages {
  /** Where the lines go; a command sets its own (the worker's and the server's log). */
  log: (line: string) => void = (line) => process.stderr.write(`scorerecon: ${line}\n`);
  private readonly down = new Set<object>();
  private announced = false;

  /** Whether a loss was reported and Redis is not back yet. */
  get outage(): boolean {
    return this.announced;
  }

  constructor(private readonly url: string) {}

  /** A connection of ours failed (it retries on its own). */
  lost(connection: object, error: Error): void {
    this.down.add(connection);
    this.report(error);
  }

  /** A connection of ours is ready (again): once none is still failing, the outage is over. */
  back(connection: object): void {
    this.down.delete(connection);
    if (this.down.size || !this.announced) return;
    this.announced = false;
    this.log(`Redis ${redactRedisUrl(this.url)}: connected again`);
  }

  /** A connection of ours was closed: it no longer counts, failing or not. */
  ended(connection: object): void {
    if (this.down.delete(connection) && !this.down.size) this.announced = false;
  }

  /** An error from a queue or worker: connection errors while a loss is reported are not repeated. */
  report(error: Error): void {
    if (this.announced) return;
    if (isConnectionError(error)) {
      this.announced = true;
      this.log(`Redis ${redactRedisUrl(this.url)}: connection lost (${error.message}); retrying`);
    } else this.log(`Redis ${redactRedisUrl(this.url)}: ${error.message}`);
  }
}

const outages = new Map<string, RedisOutages>();

/** The outage reporter of one Redis URL, shared by all of this process's connections to it. */
export function redisOutages(url: string): RedisOutages {
  let o = outages.get(url);
  if (!o) outages.set(url, (o = new RedisOutages(url)));
  return o;
}

/**
 * Whether a library error is a lost connection: by its system error code, or, for the errors
 * ioredis makes itself (plain Errors, no code and no class of their own), by their text.
 */
function isConnectionError(e: Error): boolean {
  const code = (e as { code?: string }).code ?? "";
  return (
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)$/.test(code) ||
    /Connection is closed|connect ETIMEDOUT|Stream isn't writeable/i.test(e.message)
  );
}

/** Sends a queue's, a worker's or a queue-event reader's errors to the URL's outage reporter. */
export function watchRedisErrors(
  emitter: { on(event: "error", f: (e: Error) => void): unknown },
  url: string,
) {
  const outage = redisOutages(url);
  emitter.on("error", (e) => outage.report(e));
}

const REDIS_URL = /^rediss?:\/\//i;

/**
 * A Redis connection for BullMQ (it needs maxRetriesPerRequest null for blocking calls). The
 * commands check the URL first (`checkRedis`); here an unreachable Redis is retried, its outages
 * reported once.
 */
export function redisConnection(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
  const outage = redisOutages(url);
  c.on("error", (e: Error) => outage.lost(c, e));
  c.on("ready", () => outage.back(c));
  c.on("end", () => outage.ended(c));
  return c;
}

/**
 * Connects to Redis once, with no retry, and sends a PING: a URL that is not one, or a Redis that
 * cannot be reached (refused, unknown host, no answer within `timeoutMs`, a password wanted) is a
 * UserError naming `field`, the flag or variable that gave the URL. The connection is closed
 * either way. The commands call it before they start (serve, worker, reconstruct --queue).
 */
export async function checkRedis(url: string, field: string, timeoutMs = 3000): Promise<void> {
  if (!REDIS_URL.test(url) && !url.startsWith("/"))
    throw new UserError(`${field} ${url}: not a Redis URL (redis://host:port)`, "bad_flag", field);
  const where = `${field} ${redactRedisUrl(url)}`;
  let c: Redis;
  try {
    c = new Redis(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      // A server that never answers does not close its end either: do not wait for it.
      disconnectTimeout: 100,
    });
  } catch (e) {
    throw new UserError(`${where}: ${(e as Error).message}`, "bad_flag", field);
  }
  let failure: Error | undefined;
  c.on("error", (e: Error) => (failure ??= e));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      c.connect().then(() => c.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    const reason = (failure ?? (e as Error)).message;
    throw new UserError(`${where}: cannot reach Redis (${reason})`, "redis_unreachable", field);
  } finally {
    clearTimeout(timer);
    // A connection that failed has ended; disconnecting it again would keep the process 2 s.
    if (c.status !== "end") c.disconnect();
  }
}

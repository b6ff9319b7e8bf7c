/** The app-wide middleware: security headers, the request log and the job-creation rate limit. */
import express, { type RequestHandler } from "express";
import { rateLimit } from "express-rate-limit";
import helmet from "helmet";

/** helmet's headers; no X-Powered-By; the client's address as the socket gives it (no proxy). */
export function secure(app: express.Express): void {
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  app.use(helmet());
}

/** One line per request: method, route pattern, status, time (never names or query strings). */
export function requestLog(log?: (line: string) => void): RequestHandler {
  return (req, res, next) => {
    const t0 = performance.now();
    res.on("finish", () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : "(no route)";
      log?.(`${req.method} ${route} ${res.statusCode} ${(performance.now() - t0).toFixed(0)}ms`);
    });
    next();
  };
}

/** `perMinute` job creations per client; more are a 429. */
export function jobRateLimit(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    handler: (_req, res) =>
      void res
        .status(429)
        .json({ error: { code: "rate_limited", message: "too many jobs created; try again in a minute" } }),
  });
}

/**
 * One declaration per route: its method, path, query and body schemas and answers. The same
 * declaration registers the route (the query is checked with its schema before the handler runs)
 * and describes it in /api/openapi.json (server/openapi.ts), so the two cannot drift apart.
 */
import type express from "express";
import type { Request, RequestHandler, Response } from "express";
import { z } from "zod";
import { Uuid } from "../api-schemas.js";
import { parseQuery } from "../paging.js";

export type Method = "get" | "post" | "delete";

/** An answer: a JSON body's schema, or a description with its media types (files, streams, none). */
export type Reply = z.ZodType | { description: string; content?: string[] };

/** Path parameters by name, one schema each for every route (the API document's parameters). */
export const PATH_PARAMS: Record<string, z.ZodType> = {
  id: Uuid,
  sid: Uuid.meta({ description: "a series of the study" }),
  n: z.number().int().min(0).meta({ description: "zero-based slice index in the series" }),
  method: z.string().meta({ description: "a method of the job, or <method>-std: its uncertainty map" }),
  name: z.string().meta({ description: "a model's name (GET /api/models)" }),
};

export interface Route {
  method: Method;
  /** Express path pattern: /api/... (behind the token when there is one), else a health check. */
  path: string;
  summary: string;
  /** The query string's schema, checked before the handler (a 400 names the parameter). */
  query?: z.ZodObject;
  /** The request body's schema and media type (the handler checks it: resolveJobSpec, the upload). */
  body?: { schema: z.ZodType; type: "application/json" | "multipart/form-data" };
  /** Answers by status. */
  ok: Record<number, Reply>;
  /** Statuses answered with the error body. */
  errors?: number[];
  /** Middleware before the handler (the upload, the rate limit). */
  before?: RequestHandler[];
  handle: (req: Request, res: Response) => unknown;
}

export interface RouteSpec<Q extends z.ZodObject> extends Omit<Route, "query" | "handle"> {
  query?: Q;
  handle: (req: Request, res: Response, query: z.infer<Q>) => unknown;
}

/** A route whose handler is given its query checked and with its defaults. */
export function route<Q extends z.ZodObject = z.ZodObject<Record<string, never>>>(r: RouteSpec<Q>): Route {
  const { query, handle } = r;
  return {
    ...r,
    handle: (req, res) => handle(req, res, (query ? parseQuery(query, req.query) : {}) as z.infer<Q>),
  };
}

export const isApi = (r: Route) => r.path.startsWith("/api/");

/** Registers each route on the API router (under /api) or, for the health checks, on the app. */
export function register(app: express.Express, api: express.Router, routes: readonly Route[]): void {
  for (const r of routes)
    if (isApi(r)) api[r.method](r.path.slice("/api".length), ...(r.before ?? []), r.handle);
    else app[r.method](r.path, ...(r.before ?? []), r.handle);
}

/** What the routes work on. */
export interface ApiContext {
  storage: import("../storage.js").Storage;
  jobs: import("../jobs.js").JobService;
  trainings: import("../trainings.js").TrainingService;
  limits: import("../limits.js").UploadLimits;
  /** Encoded slice answers (server/pixels.ts). */
  encoded: import("../pixels.js").EncodedSlices;
  /** Job creations per client per minute. */
  jobRateLimit: number;
}

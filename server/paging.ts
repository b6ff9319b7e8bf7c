/** Query strings checked with zod, and the pages of the list routes (GET /api/jobs, /api/studies). */
import { z } from "zod";
import { UserError } from "../src/errors.js";

/** `?limit=` of the list routes: its default and its largest value. */
export const PAGE_LIMIT = { default: 100, max: 1000 } as const;

export const PageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(PAGE_LIMIT.max)
    .default(PAGE_LIMIT.default)
    .meta({ description: `records per page (default ${PAGE_LIMIT.default})` }),
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .default(0)
    .meta({ description: "the newest records to skip (0: the page ends with the newest)" }),
});

/** One of `values` (the first by default); anything else is "must be a or b, got 'c'". */
export function choice<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .enum(values, {
      error: (issue) => `must be ${values.join(" or ")}, got '${String(issue.input)}'`,
    })
    .default(values[0]);
}

/** A query string checked against its schema; a 400 names the first bad parameter. */
export function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.infer<T> {
  const q = schema.safeParse(query);
  if (q.success) return q.data;
  const issue = q.error.issues[0];
  throw new UserError(`${issue.path.join(".")}: ${issue.message}`, "bad_request", String(issue.path[0]));
}

/**
 * One page (`?limit=&offset=`, checked with PageQuery) of records kept oldest first: the `limit`
 * newest after skipping the `offset` newest, in the order they were created (as the unpaged list
 * was, so a client that takes the last as the newest still does), with the total. The default
 * page is the newest.
 */
export function page<T>(all: readonly T[], { limit, offset }: z.infer<typeof PageQuery>) {
  const end = Math.max(0, all.length - offset);
  const items = all.slice(Math.max(0, end - limit), end);
  return { items, total: all.length, offset, limit };
}

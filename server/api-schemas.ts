/**
 * The API document's named schemas (components/schemas in /api/openapi.json): a zod registry, so
 * that a request or answer schema is declared once, as zod, and referred to by its name.
 */
import { z } from "zod";

export const API_SCHEMAS = z.registry<{ id: string }>();

/** The schema, registered under `id` (the registry keeps this very instance); ids are unique. */
export function named<T extends z.ZodType>(id: string, schema: T): T {
  const taken = API_SCHEMAS._idmap.get(id);
  if (taken && taken !== schema) throw new Error(`two API schemas are named ${id}`);
  API_SCHEMAS.add(schema, { id });
  return schema;
}

/** A record's id (server/storage.ts makes them with randomUUID). */
export const Uuid = z.string().meta({ format: "uuid" });

/** The error body of every 4xx and 5xx answer. */
export const ErrorBody = named(
  "Error",
  z.object({
    error: z.object({
      code: z.string().meta({ description: "machine-readable: not_found, bad_job, too_large, ..." }),
      message: z.string().meta({ description: "one line naming the problem (and the field)" }),
      field: z.string().optional().meta({ description: "the field, parameter or file it is about" }),
    }),
  }),
);

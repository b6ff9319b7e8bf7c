/**
 * The API's OpenAPI 3.1 document, served at /api/openapi.json, made from the route table
 * (server/routes): each route's path, query, body and answers come from the zod schemas that
 * check and shape them (zod's JSON Schema output); the methods' parameters from their declaration
 * (src/recon/methods.ts), the one that checks them.
 */
import { z } from "zod";
import { METHODS, paramsSchema, tunedDefaults } from "../src/recon/methods.js";
import { API_SCHEMAS } from "./api-schemas.js";
import { isApi, PATH_PARAMS, route, type Reply, type Route } from "./routes/route.js";
import { JobSpecSchema } from "./spec.js";

type Json = Record<string, unknown>;

const REF = "#/components/schemas/";

/** A job's methods: one schema per method, with its parameters (each optional; defaults given). */
function methodSchema(m: (typeof METHODS)[number]) {
  const params = bare(z.toJSONSchema(paramsSchema(m, true), { io: "input" }));
  const tuned = tunedDefaults(m).map(
    ([kind, p]) =>
      `; ${kind} defaults: ${Object.entries(p)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
  );
  return {
    type: "object",
    required: ["name"],
    additionalProperties: false,
    description: `${m.summary} (${m.modalities.join(", ")})${tuned.join("")}`,
    properties: { name: { const: m.name }, params },
  };
}

/** Words the job spec's fields carry in the document (the schema gives types, ranges, defaults). */
const SPEC_NOTES = new Map<z.ZodType, string>([
  [JobSpecSchema.shape.series, "required when the study has several series"],
  [JobSpecSchema.shape.slices, "[start, end), zero-based (default: all slices)"],
  [JobSpecSchema.shape.modality, "default: from the series (CT -> ct, else mri)"],
  [JobSpecSchema.shape.model, "a model name from GET /api/models (default: the shipped prior)"],
  [JobSpecSchema.shape.seed, "seed of the measurement noise"],
]);

/**
 * What every conversion does: the job's methods as one schema per method, the words above, and
 * no integer bounds that only say "a safe integer".
 */
function override({ zodSchema, jsonSchema }: { zodSchema: unknown; jsonSchema: Json }) {
  if (zodSchema === JobSpecSchema.shape.methods.element) {
    for (const k of Object.keys(jsonSchema)) delete jsonSchema[k];
    jsonSchema.oneOf = METHODS.map(methodSchema);
  }
  const note = SPEC_NOTES.get(zodSchema as z.ZodType);
  if (note) jsonSchema.description = note;
  if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
  if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
}

/** A JSON Schema without the keys that belong to a whole document. */
function bare(schema: Json): Json {
  const { $schema, $id, ...rest } = schema;
  void $schema;
  void $id;
  return rest;
}

const toJson = (schema: z.ZodType, io: "input" | "output") =>
  bare(z.toJSONSchema(schema, { io, override, unrepresentable: "any" }) as Json);

/** A named schema as a reference, any other inline. */
const schemaOf = (schema: z.ZodType, io: "input" | "output") => {
  const id = API_SCHEMAS.get(schema)?.id;
  return id ? { $ref: `${REF}${id}` } : toJson(schema, io);
};

const reply = (r: Reply) =>
  r instanceof z.ZodType
    ? {
        description: "OK",
        content: { "application/json": { schema: schemaOf(r, "output") } },
      }
    : {
        description: r.description,
        ...(r.content ? { content: Object.fromEntries(r.content.map((c) => [c, {}])) } : {}),
      };

/** A parameter: its schema, with the description beside it as OpenAPI has it. */
function parameter(name: string, where: "path" | "query", zod: z.ZodType) {
  const { description, ...schema } = toJson(zod, "input");
  const required = where === "path" || !zod.safeParse(undefined).success;
  return { name, in: where, required, schema, ...(description ? { description } : {}) };
}

function operation(r: Route): Json {
  const path = [...r.path.matchAll(/:(\w+)/g)].map(([, name]) => {
    if (!PATH_PARAMS[name])
      throw new Error(`${r.path}: path parameter '${name}' has no schema in PATH_PARAMS`);
    return parameter(name, "path", PATH_PARAMS[name]);
  });
  const query = Object.entries(r.query?.shape ?? {}).map(([name, s]) =>
    parameter(name, "query", s as z.ZodType),
  );
  return {
    summary: r.summary,
    ...(isApi(r) ? {} : { security: [] }),
    ...(path.length || query.length ? { parameters: [...path, ...query] } : {}),
    ...(r.body
      ? {
          requestBody: {
            required: true,
            content: { [r.body.type]: { schema: schemaOf(r.body.schema, "input") } },
          },
        }
      : {}),
    responses: {
      ...Object.fromEntries(Object.entries(r.ok).map(([status, x]) => [status, reply(x)])),
      ...Object.fromEntries(
        (r.errors ?? []).map((status) => [status, { $ref: "#/components/responses/Error" }]),
      ),
    },
  };
}

/** The document of these routes. */
export function openApiDocument(routes: readonly Route[]): Json {
  const bodies = new Set(routes.flatMap((r) => (r.body ? [r.body.schema] : [])));
  const convert = (io: "input" | "output") =>
    z.toJSONSchema(API_SCHEMAS, { io, override, uri: (id) => `${REF}${id}`, unrepresentable: "any" })
      .schemas as Record<string, Json>;
  const [inputs, outputs] = [convert("input"), convert("output")];
  const schemas: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(outputs)) schemas[id] = bare(schema);
  for (const b of bodies) {
    const id = API_SCHEMAS.get(b)?.id;
    if (id) schemas[id] = bare(inputs[id]);
  }
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const path = r.path.replace(/:(\w+)/g, "{$1}");
    paths[path] = { ...paths[path], [r.method]: operation(r) };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "scorerecon API",
      version: "0.1.0",
      description:
        "Upload studies, run reconstruction jobs (classical and score-based), follow their progress and fetch results. " +
        "When the server runs with SCORERECON_TOKEN, every /api route needs `Authorization: Bearer <token>`.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas,
      responses: {
        Error: { description: "error", content: { "application/json": { schema: { $ref: `${REF}Error` } } } },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

/** The routes with GET /api/openapi.json, the document of all of them (itself included). */
export function withDocument(routes: readonly Route[]): Route[] {
  let document: Json | undefined;
  const all: Route[] = [
    ...routes,
    route({
      method: "get",
      path: "/api/openapi.json",
      summary: "This document",
      ok: { 200: { description: "OpenAPI 3.1", content: ["application/json"] } },
      handle: (_req, res) => void res.json((document ??= openApiDocument(all))),
    }),
  ];
  return all;
}

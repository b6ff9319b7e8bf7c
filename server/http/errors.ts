/**
 * The API's errors: every 4xx is `{error: {code, message, field?}}` with a message of our own (never
 * the input quoted back unbounded), every other failure a 500 with an id that the log line carries.
 */
import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { UserError } from "../../src/errors.js";

/** An error the API answers with its own status (404, 409, 413, ...). */
export class HttpError extends UserError {
  constructor(
    readonly status: number,
    message: string,
    code: string,
    field?: string,
  ) {
    super(message, code, field);
  }
}

/** Nothing by that id: the id is quoted only when it looks like one. */
export const notFound = (what: string, id: string) =>
  new HttpError(404, `no ${what} ${/^[\w.-]{1,64}$/.test(id) ? id : "with that id"}`, "not_found", what);

/** The status of a UserError raised outside the server (src/): its code says which. */
export const statusOf = (e: UserError) =>
  e instanceof HttpError ? e.status : e.code === "not_found" ? 404 : e.code === "too_large" ? 413 : 400;

/**
 * Errors of the request itself that Express and body-parser raise (http-errors with a 4xx status):
 * answered with their status, never as internal. Messages are ours: theirs can quote the input.
 */
function requestErrors(e: {
  type?: string;
  status?: number;
  charset?: string;
  encoding?: string;
}): { status: number; code: string; message: string } | undefined {
  if (!e || typeof e.status !== "number" || e.status < 400 || e.status > 499) return undefined;
  const quoted = (v: string | undefined) => JSON.stringify(String(v ?? "").slice(0, 40));
  switch (e.type) {
    case "entity.parse.failed":
      return { status: 400, code: "bad_json", message: "the request body is not valid JSON" };
    case "entity.too.large":
      return { status: 413, code: "too_large", message: "the request body is too large" };
    case "charset.unsupported":
      return {
        status: 415,
        code: "unsupported_charset",
        message: `the request body's charset ${quoted(e.charset)} is not supported (JSON is UTF-8)`,
      };
    case "encoding.unsupported":
      return {
        status: 415,
        code: "unsupported_encoding",
        message: `the request body's Content-Encoding ${quoted(e.encoding)} is not supported`,
      };
  }
  // The router's decodeURIComponent of a path parameter (Express 5: a 400 URIError).
  if (e instanceof URIError)
    return { status: 400, code: "bad_path", message: "the URL path holds malformed percent-encoding" };
  // body-parser's other 400s: a body that does not decode (a broken Content-Encoding) or ends early.
  if (e.status === 400)
    return {
      status: 400,
      code: "bad_body",
      message:
        "the request body cannot be read (it does not decode as its Content-Encoding says, or it ends early)",
    };
  return { status: e.status, code: "bad_request", message: "the request cannot be processed" };
}

/** The last middleware: every error becomes its JSON answer; unknown ones are logged with an id. */
export function errorHandler(log?: (line: string) => void) {
  return (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    void next;
    if (err instanceof UserError)
      return void res
        .status(statusOf(err))
        .json({ error: { code: err.code, message: err.message, field: err.field } });
    const known = requestErrors(err as { type?: string; status?: number });
    if (known)
      return void res.status(known.status).json({ error: { code: known.code, message: known.message } });
    const id = randomUUID().slice(0, 8);
    log?.(`internal error ${id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    res.status(500).json({ error: { code: "internal", message: `internal error (error id ${id})` } });
  };
}

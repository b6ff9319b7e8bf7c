/** Bearer-token authentication of the /api routes (`serve` with SCORERECON_TOKEN). */
import { timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import { HttpError } from "./errors.js";

export function bearerAuth(token: string) {
  const expected = Buffer.from(token);
  return (req: Request, _res: Response, next: NextFunction) => {
    // The scheme is case-insensitive, then one or more spaces (RFC 7235 2.1, RFC 6750 2.1).
    const given = Buffer.from(/^bearer +(.+?) *$/i.exec(req.get("authorization") ?? "")?.[1] ?? "");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
    next(
      new HttpError(401, "a valid bearer token is required (Authorization: Bearer <token>)", "unauthorized"),
    );
  };
}

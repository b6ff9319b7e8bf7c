/**
 * Study uploads: multipart files (field `files`, repeated) of DICOM instances, a .zip of them, or
 * one NIfTI. Files are stored under names the server makes (`000007.dcm`); the client's file
 * names only choose the extension from a fixed list, so no user-supplied path ever reaches the
 * filesystem, and are kept apart to name files in error messages. Zip entries are extracted the
 * same way. Limits: bytes per file, files per upload (zip entries included, counted from the
 * zip's directory before anything is extracted), and one decompression limit for everything
 * the upload expands to (zip entries, gzip, deflated DICOM, compressed pixel data), enforced
 * while decompressing; each is a 413. The files are then parsed in a worker thread (ingest.ts).
 */
import { createWriteStream, readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Request, RequestHandler } from "express";
import multer from "multer";
import yauzl from "yauzl";
import { UserError } from "../src/errors.js";
import { DecompressionBudget, formatBytes } from "../src/io/decompression.js";
import { HttpError } from "./http/errors.js";
import { parseUploadInWorker } from "./ingest.js";
import type { UploadLimits } from "./limits.js";
import type { Storage } from "./storage.js";
import type { StudyRecord } from "./study-record.js";

/** An upload received by the middleware: its folder and, per stored file name, the user's name. */
export interface ReceivedUpload {
  dir: string;
  names: Map<string, string>;
}

type UploadRequest = Request & { upload?: ReceivedUpload };

/** The upload the middleware stored for this request, if any. */
export const receivedUpload = (req: Request): ReceivedUpload | undefined => (req as UploadRequest).upload;

/** A user's file name as shown in messages: no folders, no control characters, not too long. */
function displayName(name: string): string {
  const clean = [...basename(name.replace(/\\/g, "/"))]
    .map((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? "?" : c))
    .join("");
  return clean.length > 100 ? `${clean.slice(0, 97)}...` : clean || "(unnamed)";
}

const EXTENSIONS = [".nii.gz", ".nii", ".zip", ".dcm"] as const;
const extensionOf = (name: string) => EXTENSIONS.find((e) => name.toLowerCase().endsWith(e)) ?? ".dcm";

/** Multer middleware storing `files` into a fresh upload folder under server-made names. */
export function uploadMiddleware(storage: Storage, limits: UploadLimits): RequestHandler {
  let counter = 0;
  const upload = multer({
    storage: multer.diskStorage({
      destination: (req, _file, cb) => {
        const r = req as UploadRequest;
        r.upload ??= { dir: storage.uploadFolder(), names: new Map() };
        cb(null, r.upload.dir);
      },
      filename: (req, file, cb) => {
        const name = `${String(counter++).padStart(6, "0")}${extensionOf(file.originalname)}`;
        (req as UploadRequest).upload?.names.set(name, displayName(file.originalname));
        cb(null, name);
      },
    }),
    limits: { fileSize: limits.fileSize, files: limits.files, fields: 8 },
  });
  const files = upload.array("files", limits.files);
  return (req, res, next) =>
    files(req, res, (err?: unknown) => {
      if (!err) return next();
      const dir = receivedUpload(req)?.dir;
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (err instanceof multer.MulterError) {
        const tooLarge = err.code === "LIMIT_FILE_SIZE" || err.code === "LIMIT_FILE_COUNT";
        const message =
          err.code === "LIMIT_FILE_SIZE"
            ? `files: a file is larger than the limit of ${formatBytes(limits.fileSize)}`
            : err.code === "LIMIT_FILE_COUNT"
              ? `files: more than ${limits.files} files`
              : err.code === "LIMIT_UNEXPECTED_FILE"
                ? `${err.field ?? "files"}: upload files in the form field 'files'`
                : `files: ${err.message}`;
        return next(
          new HttpError(tooLarge ? 413 : 400, message, tooLarge ? "too_large" : "bad_upload", "files"),
        );
      }
      // The multipart parser's own errors (no boundary, a body that ends early, a client that
      // aborts) are the request's; a file system error (it has a syscall) is the server's.
      if (err instanceof Error && !("syscall" in err))
        return next(
          new HttpError(
            400,
            "files: the multipart body is malformed or was cut short",
            "bad_upload",
            "files",
          ),
        );
      next(err);
    });
}

/** `check()`'s result; when it throws, the upload's folder is removed first. */
export function discardUpload<T>(upload: ReceivedUpload | undefined, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (upload) rmSync(upload.dir, { recursive: true, force: true });
    throw e;
  }
}

/** Extracts the upload's zips and parses it into a stored study; the folder is removed either way. */
export async function ingestUpload(
  storage: Storage,
  upload: ReceivedUpload | undefined,
  limits: UploadLimits,
  modality?: string,
): Promise<StudyRecord> {
  if (!upload) throw new UserError("files: no files uploaded (form field 'files')", "bad_upload", "files");
  const { dir, names } = upload;
  try {
    const budget = new DecompressionBudget(limits.decompressed);
    const uploaded = readdirSync(dir).sort();
    const zips = uploaded.filter((n) => n.endsWith(".zip"));
    const files = { count: uploaded.length - zips.length };
    for (const zip of zips) {
      await extractZip(join(dir, zip), names.get(zip) ?? zip, dir, names, limits, budget, files);
      rmSync(join(dir, zip));
    }
    const parsed = await parseUploadInWorker(dir, { limit: budget.limit, spent: budget.spent, modality });
    return await storage.addStudy(
      parsed.source,
      parsed.files,
      parsed.volumes,
      parsed.descriptions,
      parsed.windows,
    );
  } catch (err) {
    throw err instanceof UserError ? userNamed(err, dir, names) : err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The error with the user's file names for the server's (readers name files by their path in
 * the upload folder), the folder itself as "the upload", and `files` as its field.
 */
function userNamed(err: UserError, dir: string, names: Map<string, string>): UserError {
  let message = err.message;
  for (const [stored, user] of names) message = message.split(`${dir}/${stored}`).join(user);
  message = message.split(`${dir}/`).join("").split(dir).join("the upload");
  const status = err instanceof HttpError ? err.status : err.code === "too_large" ? 413 : 400;
  return new HttpError(status, message, err.code, "files");
}

function extractZip(
  zipPath: string,
  zipName: string,
  dir: string,
  names: Map<string, string>,
  limits: UploadLimits,
  budget: DecompressionBudget,
  files: { count: number },
): Promise<void> {
  const tooLarge = (message: string) => new HttpError(413, `${zipName}: ${message}`, "too_large", "files");
  const damaged = (what: string) => new UserError(`${zipName}: ${what} is damaged`, "bad_upload", "files");
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true, validateEntrySizes: true, autoClose: false }, (err, zip) => {
      if (err || !zip)
        return reject(new UserError(`${zipName} is not a readable .zip`, "bad_upload", "files"));
      let failed = false;
      const fail = (e: Error) => {
        if (failed) return;
        failed = true;
        zip.close();
        reject(e);
      };
      // The zip's directory says how many entries it holds: refused before any is extracted.
      if (files.count + zip.entryCount > limits.files)
        return fail(
          tooLarge(`holds ${zip.entryCount} entries; an upload may hold ${limits.files} files in all`),
        );
      // First the whole directory (sizes as declared), then the entries one by one.
      const entries: yauzl.Entry[] = [];
      let declared = 0;
      zip.on("error", () => fail(damaged("the zip")));
      zip.on("entry", (entry: yauzl.Entry) => {
        if (!entry.fileName.endsWith("/")) {
          if (entry.uncompressedSize > limits.fileSize)
            return fail(
              tooLarge(
                `${displayName(entry.fileName)} expands to ${formatBytes(entry.uncompressedSize)}, over the limit of ${formatBytes(limits.fileSize)} per file`,
              ),
            );
          declared += entry.uncompressedSize;
          if (declared > budget.remaining) return fail(budget.exceeded(zipName));
          entries.push(entry);
        }
        zip.readEntry();
      });
      zip.on("end", () => {
        if (failed) return;
        void (async () => {
          for (const entry of entries) {
            const name = `z${String(++files.count).padStart(6, "0")}${extensionOf(entry.fileName)}`;
            names.set(name, `${zipName}/${displayName(entry.fileName)}`);
            const stream = await new Promise<NodeJS.ReadableStream>((ok, no) =>
              zip.openReadStream(entry, (e, s) =>
                e || !s ? no(damaged(displayName(entry.fileName))) : ok(s),
              ),
            );
            // Counted as it flows: the sizes in the directory could lie (yauzl checks them too).
            await pipeline(stream, budget.meter(zipName), createWriteStream(join(dir, name))).catch(
              (e: unknown) => {
                throw e instanceof UserError ? e : damaged(displayName(entry.fileName));
              },
            );
          }
        })().then(() => {
          zip.close();
          resolve();
        }, fail);
      });
      zip.readEntry();
    });
  });
}

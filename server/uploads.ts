/**
 * Study uploads: multipart files (field `files`, repeated) of DICOM instances, a .zip of them, or
 * one NIfTI. Files are stored under names the server makes (`0007.dcm`); the client's file names
 * only choose the extension from a fixed list, so no user-supplied path ever reaches the
 * filesystem. Zip entries are extracted the same way, with entry-count and size limits (a zip
 * bomb is refused with 413 like an oversized upload).
 */
import { createWriteStream, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Request, RequestHandler } from "express";
import multer from "multer";
import yauzl from "yauzl";
import { UserError } from "../src/errors.js";
import type { Volume } from "../src/image/volume.js";
import { listDicomSeries, readDicomSeries } from "../src/io/dicom.js";
import { readVolume } from "../src/io/index.js";
import type { Storage, StudyRecord } from "./storage.js";

export interface UploadLimits {
  /** Bytes per file (and per extracted zip entry). */
  fileSize: number;
  /** Files per upload (and entries per zip). */
  files: number;
}

/** An error the API answers with its own status (413 for limits). */
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

const EXTENSIONS = [".nii.gz", ".nii", ".zip", ".dcm"] as const;
const extensionOf = (name: string) => EXTENSIONS.find((e) => name.toLowerCase().endsWith(e)) ?? ".dcm";

/** Multer middleware storing `files` into a fresh upload folder under server-made names. */
export function uploadMiddleware(storage: Storage, limits: UploadLimits): RequestHandler {
  let counter = 0;
  const upload = multer({
    storage: multer.diskStorage({
      destination: (req, _file, cb) => {
        const r = req as Request & { uploadDir?: string };
        r.uploadDir ??= storage.uploadFolder();
        cb(null, r.uploadDir);
      },
      filename: (_req, file, cb) =>
        cb(null, `${String(counter++).padStart(6, "0")}${extensionOf(file.originalname)}`),
    }),
    limits: { fileSize: limits.fileSize, files: limits.files, fields: 8 },
  });
  const files = upload.array("files", limits.files);
  return (req, res, next) =>
    files(req, res, (err?: unknown) => {
      if (!err) return next();
      const dir = (req as Request & { uploadDir?: string }).uploadDir;
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (err instanceof multer.MulterError) {
        const tooLarge = err.code === "LIMIT_FILE_SIZE" || err.code === "LIMIT_FILE_COUNT";
        const message =
          err.code === "LIMIT_FILE_SIZE"
            ? `files: a file is larger than the limit of ${limits.fileSize} bytes`
            : err.code === "LIMIT_FILE_COUNT"
              ? `files: more than ${limits.files} files`
              : err.code === "LIMIT_UNEXPECTED_FILE"
                ? `${err.field ?? "files"}: upload files in the form field 'files'`
                : `files: ${err.message}`;
        return next(
          new HttpError(tooLarge ? 413 : 400, message, tooLarge ? "too_large" : "bad_upload", "files"),
        );
      }
      next(err);
    });
}

/** Parses an upload folder into a stored study; the folder is removed either way. */
export async function ingestUpload(
  storage: Storage,
  dir: string | undefined,
  limits: UploadLimits,
  modality?: string,
): Promise<StudyRecord> {
  if (!dir) throw new UserError("files: no files uploaded (form field 'files')", "bad_upload", "files");
  try {
    let names = readdirSync(dir).sort();
    for (const zip of names.filter((n) => n.endsWith(".zip"))) {
      await extractZip(join(dir, zip), dir, limits);
      rmSync(join(dir, zip));
    }
    names = readdirSync(dir).sort();
    if (names.length === 0) throw new UserError("files: the upload holds no files", "bad_upload", "files");
    const nifti = names.filter((n) => n.endsWith(".nii") || n.endsWith(".nii.gz"));
    let volumes: Volume[];
    let descriptions: string[];
    let source: string;
    if (nifti.length > 0) {
      if (names.length > 1)
        throw new UserError("files: upload one NIfTI file on its own", "bad_upload", "files");
      const v = await readVolume(join(dir, nifti[0]));
      const m = modality === "CT" || modality === "MR" ? modality : v.modality;
      volumes = [{ ...v, modality: m, units: m === "CT" && v.units === "arbitrary" ? "HU" : v.units }];
      descriptions = ["NIfTI volume"];
      source = "nifti";
    } else {
      const { series } = listDicomSeries(dir);
      if (series.length === 0)
        throw new UserError("files: no DICOM images or NIfTI volume in the upload", "bad_upload", "files");
      volumes = [];
      for (const s of series)
        volumes.push((await readDicomSeries(dir, { seriesUid: s.seriesInstanceUid })).volume);
      descriptions = series.map((s) => s.description);
      source = "dicom";
    }
    return await storage.addStudy(source, names.length, volumes, descriptions);
  } catch (err) {
    // Reader messages name files by their server-side path: keep only the server-made file name.
    if (err instanceof UserError && !(err instanceof HttpError))
      throw new UserError(err.message.split(`${dir}/`).join("").split(dir).join("upload"), err.code, "files");
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function extractZip(zipPath: string, dir: string, limits: UploadLimits): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(new UserError("files: a .zip could not be read", "bad_upload", "files"));
      let count = 0;
      const fail = (e: Error) => {
        zip.close();
        reject(e);
      };
      zip.on("error", () => fail(new UserError("files: a .zip is damaged", "bad_upload", "files")));
      zip.on("end", () => resolve());
      zip.on("entry", (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith("/")) return zip.readEntry();
        if (++count > limits.files)
          return fail(
            new HttpError(413, `files: the zip holds more than ${limits.files} files`, "too_large", "files"),
          );
        if (entry.uncompressedSize > limits.fileSize)
          return fail(
            new HttpError(
              413,
              `files: a zip entry is larger than ${limits.fileSize} bytes`,
              "too_large",
              "files",
            ),
          );
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream)
            return fail(new UserError("files: a .zip entry is damaged", "bad_upload", "files"));
          const name = `z${String(count).padStart(6, "0")}${extensionOf(entry.fileName)}`;
          pipeline(stream, createWriteStream(join(dir, name)))
            .then(() => zip.readEntry())
            .catch(() => fail(new UserError("files: a .zip entry is damaged", "bad_upload", "files")));
        });
      });
      zip.readEntry();
    });
  });
}

/**
 * Every file scorerecon writes goes to a temporary name in the target folder, is flushed, and is
 * then renamed over the target: a crash or a full disk never leaves a file that looks complete.
 * The temporary name starts with a dot and ends in .tmp, so a left-over one (after a power cut)
 * is hidden and plainly not a result.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.js";

export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

/**
 * Writes `bytes` to `path` atomically. A missing or unwritable output folder, or a folder in the
 * target's place, is the user's mistake and becomes a `UserError` naming `path`; other failures
 * (a full disk, say) are passed on. Either way no temporary file is left behind.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = tempNameFor(path);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, "w");
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw asUserError(err, path);
  }
}

/** Writes `value` as indented JSON, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, Buffer.from(JSON.stringify(value, null, 2) + "\n"));
}

function asUserError(err: unknown, path: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    ENOENT: `its folder ${dirname(path)} does not exist`,
    ENOTDIR: `${dirname(path)} is not a folder`,
    EISDIR: "a folder of that name is in the way",
    EACCES: "permission denied",
    EPERM: "permission denied",
    EROFS: "the file system is read-only",
  };
  return code && code in why
    ? new UserError(`cannot write ${path}: ${why[code]}`, "cannot_write", path)
    : err;
}

/**
 * Every file scorerecon writes goes to a temporary name in the target folder, is flushed, and is
 * then renamed over the target: a crash or a full disk never leaves a file that looks complete.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { basename, dirname, join } from "node:path";

export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
}

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
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

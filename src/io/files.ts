/** Reading an input file whole, with the user's mistakes (missing, a folder, no permission) as one-line errors. */
import { readFileSync } from "node:fs";
import { UserError } from "../errors.js";

export function readInputFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`${path}: no such file`, "not_found", path);
    if (code === "EISDIR")
      throw new UserError(`${path} is a folder, expected an image file`, "bad_file", path);
    if (code === "EACCES" || code === "EPERM")
      throw new UserError(`${path}: permission denied`, "cannot_read", path);
    throw err;
  }
}

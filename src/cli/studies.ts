/**
 * The studies `reconstruct --in` names: an image file or a DICOM folder is one study; a folder
 * holding no DICOM files of its own is a folder of studies. Each gets a distinct output folder name.
 */
import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { UserError } from "../errors.js";
import { isDicomPath } from "../io/index.js";

const IMAGE_FILE = /\.(nii|nii\.gz|npy|cfl|png|dcm)$/i;

export interface Study {
  name: string;
  path: string;
}

/**
 * The studies named by --in: an image file or a DICOM folder is one study; a folder holding no
 * DICOM files of its own is a folder of studies (its image files and subfolders, sorted).
 */
export function expandStudies(inputs: string[]): { studies: Study[]; batch: boolean } {
  const studies: Study[] = [];
  let batch = inputs.length > 1;
  for (const path of inputs) {
    let dir = false;
    try {
      dir = statSync(path).isDirectory();
    } catch {
      throw new UserError(`${path}: no such file`, "not_found", "--in");
    }
    const children = dir ? readdirSync(path).sort() : [];
    const ownDicom = children.some((c) => {
      const p = join(path, c);
      return statSync(p).isFile() && isDicomPath(p);
    });
    if (!dir || ownDicom) {
      studies.push({ name: studyName(path), path });
      continue;
    }
    batch = true;
    const inner = children
      .filter((c) => !c.startsWith("."))
      .map((c) => join(path, c))
      .filter((p) => statSync(p).isDirectory() || IMAGE_FILE.test(p));
    if (inner.length === 0) throw new UserError(`${path}: no studies in this folder`, "not_found", "--in");
    for (const p of inner) studies.push({ name: studyName(p), path: p });
  }
  // Distinct output folder names.
  const seen = new Map<string, number>();
  for (const s of studies) {
    const n = (seen.get(s.name) ?? 0) + 1;
    seen.set(s.name, n);
    if (n > 1) s.name = `${s.name}-${n}`;
  }
  return { studies, batch };
}

export const studyName = (path: string) =>
  basename(path.replace(/[/\\]+$/, "")).replace(IMAGE_FILE, "") || "study";

/**
 * DICOM files in (dicom-parser): one file, or a folder searched recursively (DICOMDIR trees
 * included; the DICOMDIR file itself is skipped). A broken or non-image file inside a folder is
 * reported (skipped) and the rest still loads; a single file given directly that is broken is an
 * error naming it. Deflated files are inflated within the decompression budget.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import dicomParser from "dicom-parser";
import { UserError } from "../errors.js";
import type { DecompressionBudget } from "./decompression.js";

export interface Instance {
  file: string;
  ds: dicomParser.DataSet;
}

export interface SkippedFile {
  file: string;
  reason: string;
}

/** The number of frames of an instance (NumberOfFrames, 1 when absent). */
export const frames = (ds: dicomParser.DataSet) => ds.intString("x00280008") ?? 1;

const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const IMPLICIT_LE = "1.2.840.10008.1.2";
const VRS = new Set(
  "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split(
    " ",
  ),
);

/**
 * A file's bytes as a DICOM Part 10 stream, or undefined when they are no DICOM data set. Part 10
 * (128-byte preamble, "DICM", the file meta group) as it is; a file meta group without the
 * preamble gets one; a bare data set (no preamble, no meta group, as ACR-NEMA-era and some
 * older writers store it: it starts with its group 0008 elements) gets a preamble and a meta group
 * naming explicit or implicit VR little endian, read from its first element's form (PS3.5 7.1).
 */
export function asPart10(b: Uint8Array): Uint8Array | undefined {
  const text = (from: number, to: number) => Buffer.from(b.subarray(from, to)).toString("latin1");
  if (b.length > 132 && text(128, 132) === "DICM") return b;
  if (b.length < 8) return undefined;
  const group = b[0] | (b[1] << 8);
  const explicit = VRS.has(text(4, 6));
  if (group === 0x0002 && explicit) return Buffer.concat([preamble(), b]);
  if (group !== 0x0008) return undefined;
  if (!explicit) {
    // Implicit VR: a 4-byte length that fits the file.
    const length = (b[4] | (b[5] << 8) | (b[6] << 16)) + b[7] * 2 ** 24;
    if (length % 2 !== 0 || 8 + length > b.length) return undefined;
  }
  return Buffer.concat([preamble(), meta(explicit ? EXPLICIT_LE : IMPLICIT_LE), b]);
}

/** 128 zero bytes and "DICM". */
const preamble = () => Buffer.concat([Buffer.alloc(128), Buffer.from("DICM", "latin1")]);

/** A file meta group of one element, (0002,0010) Transfer Syntax UID, explicit VR little endian. */
function meta(syntax: string): Buffer {
  const value = Buffer.from(syntax.length % 2 ? `${syntax}\0` : syntax, "latin1");
  const head = Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49, 0, 0]);
  head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

/** True when the file holds a DICOM data set (asPart10). */
export function looksLikeDicom(path: string): boolean {
  try {
    return asPart10(readFileSync(path)) !== undefined;
  } catch {
    return false;
  }
}

function parse(file: string, budget: DecompressionBudget): Instance {
  const read = readFileSync(file);
  const bytes = asPart10(read) ?? read;
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, {
      inflater: (arr: Uint8Array, position: number) => {
        // Deflated syntax (PS3.5 A.5): raw deflate of everything after the file meta group.
        const inflated = budget.inflateRaw(arr.subarray(position), file);
        const out = new Uint8Array(position + inflated.length);
        out.set(arr.subarray(0, position));
        out.set(inflated, position);
        return out;
      },
    } as dicomParser.ParseDicomOptions);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg =
      typeof e === "string"
        ? e
        : ((e as { exception?: string }).exception ?? (e as Error).message ?? String(e));
    throw new UserError(`${file} is not a readable DICOM file (${msg})`, "bad_dicom", file);
  }
  if (!ds.elements.x7fe00010) throw new UserError(`${file} has no Pixel Data (7FE0,0010)`, "bad_dicom", file);
  // An image of no pixels or no frames (PS3.3 C.7.6.3: Rows, Columns >= 1; C.7.6.6: NumberOfFrames >= 1).
  for (const [tag, name] of [
    ["x00280010", "Rows"],
    ["x00280011", "Columns"],
  ] as const) {
    const v = ds.uint16(tag);
    if (!v)
      throw new UserError(
        `${file} has ${name} ${v ?? "missing"}; an image needs 1 or more`,
        "bad_dicom",
        file,
      );
  }
  const f = frames(ds);
  if (!(Number.isInteger(f) && f >= 1))
    throw new UserError(
      `${file} has NumberOfFrames ${ds.string("x00280008") ?? f}; an image needs 1 or more`,
      "bad_dicom",
      file,
    );
  return { file, ds };
}

export function collectInstances(
  path: string,
  budget: DecompressionBudget,
): { instances: Instance[]; skipped: SkippedFile[] } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`${path}: no such file or folder`, "not_found", path);
  }
  if (!st.isDirectory()) return { instances: [parse(path, budget)], skipped: [] };
  const instances: Instance[] = [];
  const skipped: SkippedFile[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir).sort()) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (basename(p).toUpperCase() !== "DICOMDIR") {
        try {
          instances.push(parse(p, budget));
        } catch (err) {
          // Past the decompression limit nothing more is read.
          if (err instanceof UserError && err.code === "too_large") throw err;
          skipped.push({
            file: p,
            reason: err instanceof UserError ? err.message.replace(`${p} `, "") : String(err),
          });
        }
      }
    }
  };
  walk(path);
  // A folder of one file that cannot be read: that file's own message.
  if (instances.length === 0 && skipped.length === 1)
    throw new UserError(`${skipped[0].file} ${skipped[0].reason}`, "bad_dicom", skipped[0].file);
  if (instances.length === 0)
    throw new UserError(
      `${path} holds no readable DICOM image${skipped.length ? ` (${skipped.length} file(s) skipped, e.g. ${skipped[0].file}: ${skipped[0].reason})` : ""}`,
      "bad_dicom",
      path,
    );
  return { instances, skipped };
}

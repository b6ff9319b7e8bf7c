/**
 * One cap on the bytes that decompression may produce for one input (a server upload: its gzip
 * NIfTI, deflated DICOM, encapsulated pixel data and zip entries together). Every decompressor
 * takes its share of the budget before or while it produces the bytes, so a small file that
 * expands to gigabytes is stopped at the limit, not after it: zlib's maxOutputLength stops
 * inflating there, and a zip entry's stream is counted as it flows. The CLI reads local files
 * without a budget (Infinity).
 */
import { constants as bufferConstants } from "node:buffer";
import { Transform } from "node:stream";
import { gunzipSync, inflateRawSync } from "node:zlib";
import { UserError } from "../errors.js";

export class DecompressionBudget {
  constructor(
    /** Bytes that all decompression of this input may produce, in total. */
    readonly limit: number = Infinity,
    /** Bytes already produced (by another thread's share of the same input). */
    private used = 0,
  ) {}

  get spent(): number {
    return this.used;
  }

  get remaining(): number {
    return Math.max(0, this.limit - this.used);
  }

  /** Takes `bytes` from the budget; over the limit, the error names `what`. */
  take(bytes: number, what: string): void {
    this.used += bytes;
    if (this.used > this.limit) throw this.exceeded(what);
  }

  exceeded(what: string): UserError {
    return new UserError(
      `${what} expands to more than the decompression limit of ${formatBytes(this.limit)}`,
      "too_large",
      what,
    );
  }

  /** zlib's gunzip, stopped as soon as its output passes the rest of the budget. */
  gunzip(data: Uint8Array, what: string): Buffer {
    return this.inflate(() => gunzipSync(data, { maxOutputLength: this.maxOutput() }), what);
  }

  /** zlib's raw inflate (DICOM's deflated syntax), stopped the same way. */
  inflateRaw(data: Uint8Array, what: string): Buffer {
    return this.inflate(() => inflateRawSync(data, { maxOutputLength: this.maxOutput() }), what);
  }

  /** A pass-through stream that errors (with the budget's error) once the bytes pass the limit. */
  meter(what: string): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        try {
          this.take(chunk.length, what);
          done(null, chunk);
        } catch (e) {
          done(e as Error);
        }
      },
    });
  }

  private maxOutput(): number {
    // One byte past the rest, so that output of exactly the rest still fits.
    return Math.max(1, Math.min(this.remaining + 1, bufferConstants.MAX_LENGTH));
  }

  private inflate(run: () => Buffer, what: string): Buffer {
    let out: Buffer;
    try {
      out = run();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") throw this.exceeded(what);
      throw e;
    }
    this.take(out.length, what);
    return out;
  }
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return "unlimited";
  for (const [unit, size] of [
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ] as const)
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  return `${n} bytes`;
}

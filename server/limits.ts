/**
 * The upload limits and their defaults, declared once: `scorerecon serve`'s flags and the app use
 * them. (No imports: the CLI reads the defaults for its `--help` without loading the server.)
 */
export interface UploadLimits {
  /** Bytes per file (and per extracted zip entry). */
  fileSize: number;
  /** Files per upload, zip entries included. */
  files: number;
  /** Bytes that all decompression of one upload may produce (zip entries, gzip, deflate, pixel data). */
  decompressed: number;
}

export const MIB = 2 ** 20;

/** 512 MiB a file, 4000 files, and 1 GiB decompressed: 2000 slices of 512 x 512 int16. */
export const DEFAULT_LIMITS: UploadLimits = {
  fileSize: 512 * MIB,
  files: 4000,
  decompressed: 1024 * MIB,
};

declare module "jpeg-lossless-decoder-js" {
  /** JPEG lossless (process 14) decoder; returns the samples (16-bit little endian above 8 bits). */
  export class Decoder {
    decompress(buffer: ArrayBuffer, offset?: number, length?: number): ArrayBuffer;
  }
}

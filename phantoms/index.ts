/** The procedural phantom generators, by name. All are seeded: same (kind, size, seed), same bytes. */
import { brain } from "./brain.js";
import { ctBody } from "./ct-body.js";
import { randomEllipses, sheppLogan } from "./ellipses.js";

export const PHANTOM_KINDS = ["shepp-logan", "ellipses", "ct-body", "brain"] as const;
export type PhantomKind = (typeof PHANTOM_KINDS)[number];

export interface Phantom {
  rows: number;
  cols: number;
  data: Float32Array;
  /** ct-body is in Hounsfield units; the others are intensities in [0, 1]. */
  units: "HU" | "arbitrary";
}

export function generatePhantom(kind: PhantomKind, size: number, seed = 0): Phantom {
  const data =
    kind === "shepp-logan"
      ? sheppLogan(size)
      : kind === "ellipses"
        ? randomEllipses(size, seed)
        : kind === "ct-body"
          ? ctBody(size, seed)
          : brain(size, seed);
  return { rows: size, cols: size, data, units: kind === "ct-body" ? "HU" : "arbitrary" };
}

export { sheppLogan, randomEllipses, MODIFIED_SHEPP_LOGAN } from "./ellipses.js";
export { ctBody } from "./ct-body.js";
export { brain } from "./brain.js";

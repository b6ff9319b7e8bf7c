/**
 * The classical reconstruction methods (no prior): the adjoint, FBP, SIRT, and PDHG with a TV or
 * wavelet regulariser. Each returns a real image in operator units (MRI: the magnitude).
 */
import { fbp, FBP_FILTERS, fbpFilter, ParallelBeamProjector } from "../../operators/ct.js";
import { magnitude } from "../../operators/complex.js";
import { pdhg } from "../baselines/pdhg.js";
import { finiteDifferences, stationaryHaar } from "../baselines/regularisers.js";
import { sirt } from "../baselines/sirt.js";
import { int, iterations, lambda, type MethodContext, type Params, type ReconMethod } from "./method-spec.js";

const toImage = (ctx: MethodContext, x: Float32Array) => (ctx.model.op.input.complex ? magnitude(x) : x);
const isCt = (ctx: MethodContext) => ctx.model.acquisition.modality === "ct";

/** The projector of a CT forward model (FBP needs its geometry). */
function projector(ctx: MethodContext): ParallelBeamProjector {
  const op = ctx.model.op;
  if (!(op instanceof ParallelBeamProjector)) throw new TypeError(`FBP needs a CT projector, not ${op.name}`);
  return op;
}

/** CT iterative methods start from the ramp FBP: PDHG and SIRT then need far fewer iterations. */
const ctStart = (ctx: MethodContext) =>
  isCt(ctx) ? fbp(ctx.y, projector(ctx), { filter: "ramp" }) : undefined;

/** PDHG with a TV or wavelet regulariser (the TV one also makes the score methods' start). */
export const regularised =
  (transform: "tv" | "wavelet") =>
  (ctx: MethodContext, p: Params): Float32Array => {
    const complex = ctx.model.op.input.complex;
    const w =
      transform === "tv"
        ? finiteDifferences(ctx.rows, ctx.cols, complex)
        : stationaryHaar(ctx.rows, ctx.cols, complex, Number(p.levels));
    const x = pdhg(ctx.model.op, ctx.y, w, {
      lambda: Number(p.lambda),
      iterations: Number(p.iterations),
      init: ctStart(ctx),
      nonNegative: isCt(ctx),
      onIteration: ctx.onIteration,
      signal: ctx.signal,
    });
    return toImage(ctx, x);
  };

export const TV_PARAMS = { lambda: lambda(0.002), iterations: iterations(300) };

export const CLASSICAL_METHODS: readonly ReconMethod[] = [
  {
    name: "zero-filled",
    modalities: ["mri"],
    summary: "A^H y: inverse FFT of the k-space with unsampled lines zero (magnitude)",
    params: {},
    run: (ctx) => toImage(ctx, ctx.model.op.adjoint(ctx.y)),
  },
  {
    name: "fbp",
    modalities: ["ct"],
    summary: "filtered backprojection (filter=ramp|shepp-logan|cosine|hamming|hann)",
    params: { filter: { kind: "choice", choices: FBP_FILTERS, default: "ramp", help: "ramp filter window" } },
    run: (ctx, p) => fbp(ctx.y, projector(ctx), { filter: fbpFilter(p.filter) }),
  },
  {
    name: "sirt",
    modalities: ["ct"],
    summary: "SIRT from the FBP, non-negative, fixed iteration count",
    params: { iterations: iterations(100) },
    run: (ctx, p) =>
      sirt(ctx.model.op, ctx.y, {
        iterations: Number(p.iterations),
        init: ctStart(ctx)?.map((v) => Math.max(0, v)),
        nonNegative: true,
        onIteration: ctx.onIteration,
        signal: ctx.signal,
      }),
  },
  {
    name: "tv",
    modalities: ["mri", "ct"],
    summary: "total-variation regularised least squares by PDHG (CS-TV for MRI)",
    params: TV_PARAMS,
    run: regularised("tv"),
  },
  {
    name: "wavelet",
    modalities: ["mri", "ct"],
    summary: "l1 stationary-Haar-wavelet regularised least squares by PDHG (CS-wavelet)",
    params: { ...TV_PARAMS, levels: int(1, 8, 4, "wavelet levels") },
    run: regularised("wavelet"),
  },
];

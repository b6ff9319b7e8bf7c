/**
 * Measurement noise, on the operator's side (deepinv's noise models beside its physics): a model
 * says what noise y = A x + n carries, addNoise draws it for an operator's measurements, and the
 * samplers read its Gaussian level.
 */
import { addSinogramGaussianNoise, addSinogramPoissonNoise } from "./ct.js";
import type { LinearOperator } from "./linear-operator.js";
import { addKspaceNoise, MriCartesianOperator } from "./mri.js";

/**
 * None; white Gaussian noise of standard deviation sigma per real component; or transmission
 * (Poisson) counts of I0 incident photons per detector bin (CT).
 */
export type NoiseModel =
  { kind: "none" } | { kind: "gaussian"; sigma: number } | { kind: "poisson"; I0: number };

/**
 * The measurements with noise of the model drawn for this operator: Gaussian on what it measures
 * (MRI: the sampled k-space positions; otherwise every value), Poisson as CT transmission noise of
 * the line integrals. A new array unless there is no noise; the same seed gives the same bytes.
 */
export function addNoise(op: LinearOperator, y: Float32Array, noise: NoiseModel, seed: number): Float32Array {
  if (noise.kind === "gaussian")
    return op instanceof MriCartesianOperator
      ? addKspaceNoise(y, op.mask, noise.sigma, seed)
      : addSinogramGaussianNoise(y, noise.sigma, seed);
  if (noise.kind === "poisson") return addSinogramPoissonNoise(y, { I0: noise.I0, seed });
  return y;
}

/**
 * The standard deviation of the model's Gaussian noise per real component, as the posterior
 * samplers' likelihood takes it: 0 for none and for Poisson noise (whose data they treat as
 * noise-free).
 */
export function gaussianSigma(noise: NoiseModel): number {
  return noise.kind === "gaussian" ? noise.sigma : 0;
}

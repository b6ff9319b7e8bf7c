/**
 * Stochastic differential equations of score-based generative modelling (Song, Sohl-Dickstein,
 * Kingma, Kumar, Ermon & Poole, ICLR 2021; the shape of score_sde's sde_lib.py). Every SDE here
 * has the affine form dx = f(t) x dt + g(t) dw, so it is described by scalar functions of t:
 * the perturbation kernel is p_t(x_t | x_0) = N(mean(t) x_0, std(t)^2 I), and samplers combine
 * these scalars with any vector type (tf tensors for networks, numbers for exact-score tests).
 */
export type SdeName = "ve" | "vp" | "subvp";

export interface SdeConfig {
  name: SdeName;
  /** VE: sigma_min, sigma_max. VP / sub-VP: beta_min, beta_max. */
  sigmaMin?: number;
  sigmaMax?: number;
  betaMin?: number;
  betaMax?: number;
}

export abstract class Sde {
  /** Integration runs over [eps, T]. */
  readonly T = 1;
  abstract readonly config: SdeConfig;
  /** Drift coefficient f(t) in f(t) x. */
  abstract driftCoef(t: number): number;
  abstract diffusion(t: number): number;
  /** Marginal mean coefficient and standard deviation of p_t(x_t | x_0). */
  abstract meanCoef(t: number): number;
  abstract std(t: number): number;
  /** Standard deviation of the prior p_T, from which sampling starts. */
  abstract priorStd(): number;
  /**
   * One step of the discretised forward process at step i of N (score_sde `discretize`):
   * x_{i+1} = x_i + fCoef x_i + G z. Reverse-diffusion predictors run it backwards.
   */
  abstract discretize(t: number, n: number): { fCoef: number; G: number };
  /** The network's noise-level input: log sigma for VE (NCSN++), t otherwise (DDPM++). */
  abstract noiseInput(t: number): number;
}

export class VeSde extends Sde {
  readonly config: SdeConfig;
  constructor(
    readonly sigmaMin = 0.01,
    readonly sigmaMax = 50,
  ) {
    super();
    this.config = { name: "ve", sigmaMin, sigmaMax };
  }
  sigma(t: number): number {
    return this.sigmaMin * (this.sigmaMax / this.sigmaMin) ** t;
  }
  driftCoef(): number {
    return 0;
  }
  diffusion(t: number): number {
    return this.sigma(t) * Math.sqrt(2 * Math.log(this.sigmaMax / this.sigmaMin));
  }
  meanCoef(): number {
    return 1;
  }
  std(t: number): number {
    return this.sigma(t);
  }
  priorStd(): number {
    return this.sigmaMax;
  }
  discretize(t: number, n: number) {
    // Geometric noise levels: sigma_i at t = i / (N - 1); the variance grows by sigma_i^2 - sigma_{i-1}^2.
    const i = Math.round(t * (n - 1));
    const s = this.sigma(i / (n - 1));
    const prev = i === 0 ? 0 : this.sigma((i - 1) / (n - 1));
    return { fCoef: 0, G: Math.sqrt(s * s - prev * prev) };
  }
  noiseInput(t: number): number {
    return Math.log(this.sigma(t));
  }
}

export class VpSde extends Sde {
  readonly config: SdeConfig;
  constructor(
    readonly betaMin = 0.1,
    readonly betaMax = 20,
    readonly subVp = false,
  ) {
    super();
    this.config = { name: subVp ? "subvp" : "vp", betaMin, betaMax };
  }
  beta(t: number): number {
    return this.betaMin + t * (this.betaMax - this.betaMin);
  }
  private logMeanCoef(t: number): number {
    return -0.25 * t * t * (this.betaMax - this.betaMin) - 0.5 * t * this.betaMin;
  }
  driftCoef(t: number): number {
    return -0.5 * this.beta(t);
  }
  diffusion(t: number): number {
    if (!this.subVp) return Math.sqrt(this.beta(t));
    const discount = 1 - Math.exp(-2 * this.betaMin * t - (this.betaMax - this.betaMin) * t * t);
    return Math.sqrt(this.beta(t) * discount);
  }
  meanCoef(t: number): number {
    return Math.exp(this.logMeanCoef(t));
  }
  std(t: number): number {
    const v = 1 - Math.exp(2 * this.logMeanCoef(t));
    return this.subVp ? v : Math.sqrt(v);
  }
  priorStd(): number {
    return 1;
  }
  discretize(t: number, n: number) {
    if (this.subVp) {
      // Euler-Maruyama discretisation, as score_sde's default for sub-VP.
      const dt = 1 / n;
      return { fCoef: this.driftCoef(t) * dt, G: this.diffusion(t) * Math.sqrt(dt) };
    }
    // DDPM's discrete betas beta_i = beta_min / N + i (beta_max - beta_min) / (N (N - 1)).
    const i = Math.round(t * (n - 1));
    const b = this.betaMin / n + (i * (this.betaMax - this.betaMin)) / (n * (n - 1));
    return { fCoef: Math.sqrt(1 - b) - 1, G: Math.sqrt(b) };
  }
  noiseInput(t: number): number {
    return 999 * t;
  }
}

export function makeSde(config: SdeConfig): Sde {
  if (config.name === "ve") return new VeSde(config.sigmaMin, config.sigmaMax);
  return new VpSde(config.betaMin, config.betaMax, config.name === "subvp");
}

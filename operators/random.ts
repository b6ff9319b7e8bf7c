/**
 * Seeded pseudo-random numbers: the same seed gives the same bytes on every platform
 * (xoshiro128**, Blackman & Vigna 2018, seeded through splitmix32). Math.random is never used.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Poisson-distributed count with mean `lambda` (Knuth for small, normal approximation above 500). */
  poisson(lambda: number): number;
}

/** The seeds a user may give (every seeded command, job and method): 0 to 2^31 - 1. */
export const SEED_RANGE = { min: 0, max: 2 ** 31 - 1 } as const;

export function createRng(seed: number): Rng {
  let x = (Math.trunc(seed) ^ 0x85ebca6b) >>> 0;
  const splitmix = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix(),
    b = splitmix(),
    c = splitmix(),
    d = splitmix();
  const next = () => {
    const r = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r;
  };
  let spare: number | undefined;
  const uniform = () => next() / 4294967296;
  const normal = () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return {
    uniform,
    normal,
    int: (n) => Math.floor(uniform() * n),
    poisson(lambda) {
      if (lambda <= 0) return 0;
      if (lambda > 500) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal()));
      const l = Math.exp(-lambda);
      let k = 0;
      let p = 1;
      do {
        k++;
        p *= uniform();
      } while (p > l);
      return k - 1;
    },
  };
}

function rotl(v: number, k: number): number {
  return ((v << k) | (v >>> (32 - k))) >>> 0;
}

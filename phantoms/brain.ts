/**
 * Procedural T1-weighted-like axial brain slices with intensities in [0, 1]: background 0, scalp
 * fat bright (~0.85), skull dark (~0.08), CSF dark (~0.15), grey matter ~0.5, white matter ~0.78,
 * deep grey nuclei ~0.6. The cortex is a grey-matter ribbon whose boundaries fold: the white-matter
 * edge is modulated in angle by random sinusoids (gyri), and thin CSF sulci reach in from the
 * surface where the folding pattern peaks. Ventricles, the interhemispheric fissure, a smooth
 * multiplicative bias field (coil sensitivity) and mild texture complete it. Random anatomy from
 * the seed; coordinates [-1, 1]^2 with y up (anterior at the top).
 */
import { createRng } from "../operators/random.js";
import { smoothField } from "./texture.js";

const CSF = 0.15,
  GM = 0.5,
  WM = 0.78,
  DEEP_GM = 0.6,
  SKULL = 0.08,
  SCALP = 0.85;

export function brain(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const a = 0.72 + 0.1 * rng.uniform(),
    b = 0.86 + 0.08 * rng.uniform();
  const scalp = 0.035 + 0.02 * rng.uniform(),
    skull = 0.04 + 0.02 * rng.uniform(),
    csf = 0.012 + 0.01 * rng.uniform();
  const ribbon = 0.05 + 0.025 * rng.uniform();
  // Gyral folding: a sum of sinusoids in angle with random frequencies and phases.
  const folds = Array.from({ length: 4 }, (_, k) => ({
    f: 14 + k * 6 + rng.int(6),
    p: 2 * Math.PI * rng.uniform(),
    amp: (0.5 + 0.5 * rng.uniform()) / (k + 1),
  }));
  const foldAmp = 0.05 + 0.04 * rng.uniform();
  const sulcusFreq = 22 + rng.int(14),
    sulcusPhase = 2 * Math.PI * rng.uniform();
  const sulcusDepth = 0.06 + 0.06 * rng.uniform();
  const vent = {
    s: 0.08 + 0.07 * rng.uniform(),
    x: 0.06 + 0.03 * rng.uniform(),
    y: 0.04 + 0.08 * rng.uniform(),
  };
  const deep = 0.09 + 0.03 * rng.uniform();
  const bias = smoothField(n, 3, rng);
  const texture = smoothField(n, 40, rng);
  const biasAmp = 0.08 + 0.1 * rng.uniform();
  const out = new Float32Array(n * n);
  const h = (n - 1) / 2;
  for (let row = 0; row < n; row++) {
    const y = (h - row) / h;
    for (let col = 0; col < n; col++) {
      const x = (col - h) / h;
      // Normalised elliptical radius: 1 on the outer scalp boundary.
      const rho = Math.hypot(x / a, y / b);
      if (rho > 1) continue;
      const theta = Math.atan2(y / b, x / a);
      // Depth below the outer surface in units of the mean radius.
      const depth = (1 - rho) * 0.5 * (a + b);
      let v: number;
      if (depth < scalp) v = SCALP;
      else if (depth < scalp + skull) v = SKULL;
      else if (depth < scalp + skull + csf) v = CSF;
      else {
        const d = depth - scalp - skull - csf;
        let fold = 0;
        for (const f of folds) fold += f.amp * Math.sin(f.f * theta + f.p);
        const gmEdge = ribbon + foldAmp * (0.5 + 0.5 * Math.tanh(2 * fold));
        const s = Math.sin(sulcusFreq * theta + sulcusPhase + 0.8 * fold + 25 * d * fold);
        const inSulcus = s > 0.93 && d < sulcusDepth + 0.5 * foldAmp * (1 + fold);
        const fissure = Math.abs(x) < 0.012 && Math.abs(y) > 0.3 && d < 0.9;
        if (inSulcus || fissure) v = CSF;
        else if (d < gmEdge) v = GM;
        else v = WM;
        // Lateral ventricles (crescent-like pair) and deep grey nuclei.
        const vx = (Math.abs(x) - vent.x) / (vent.s * 0.45),
          vy = (y - vent.y) / (vent.s * 1.6);
        if (vx * vx + vy * vy < 1 && Math.abs(x) > 0.01) v = CSF;
        else {
          const gx = (Math.abs(x) - vent.x - 0.13) / deep,
            gy = (y + 0.05) / (deep * 1.5);
          if (gx * gx + gy * gy < 1) v = DEEP_GM;
        }
      }
      const i = row * n + col;
      out[i] = Math.min(1, Math.max(0, v * (1 + biasAmp * bias[i]) + 0.02 * texture[i]));
    }
  }
  return out;
}

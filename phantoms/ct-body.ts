/**
 * Procedural CT slices in Hounsfield units: thorax, abdomen or head, with random anatomy from the
 * seed. Tissue values follow typical contrast-enhanced CT: air -1000, lung parenchyma about -850
 * with vessels, fat about -100, muscle and soft tissue 40-60, liver about 60, enhanced vessels and
 * heart chambers 200-300, trabecular bone about 250 inside cortical bone of 800-1400. Each tissue
 * carries a few HU of smooth texture; air carries none. Shapes are painted in order (later shapes
 * cover earlier ones) on [-1, 1]^2 with y up and the patient's right on the image left (radiological
 * convention).
 */
import { createRng, type Rng } from "../operators/random.js";
import { smoothField } from "./texture.js";

interface Shape {
  x0: number;
  y0: number;
  a: number;
  b: number;
  /** Rotation, radians. */
  phi: number;
  hu: number;
  /** Texture amplitude in HU. */
  texture: number;
}

const jitter = (rng: Rng, v: number, frac: number) => v * (1 + frac * (2 * rng.uniform() - 1));

function ellipse(x0: number, y0: number, a: number, b: number, hu: number, texture = 8, phi = 0): Shape {
  return { x0, y0, a, b, phi, hu, texture };
}

/** Outer body with skin-fat-muscle layers, as concentric scaled ellipses. */
function bodyWall(rng: Rng, a: number, b: number, y0: number): Shape[] {
  const fat = 0.03 + 0.09 * rng.uniform();
  const muscle = 0.03 + 0.04 * rng.uniform();
  return [
    ellipse(0, y0, a, b, 40, 5),
    ellipse(0, y0, a - 0.01, b - 0.01, -100, 10),
    ellipse(0, y0, a - 0.01 - fat, b - 0.01 - fat, 50, 8),
    ellipse(0, y0, a - 0.01 - fat - muscle, b - 0.01 - fat - muscle, 20, 8),
  ];
}

function vertebra(rng: Rng, y: number, size: number): Shape[] {
  const s = size * jitter(rng, 1, 0.15);
  return [
    ellipse(0, y, s, 0.85 * s, 1100, 60),
    ellipse(0, y, 0.8 * s, 0.68 * s, 250, 40),
    ellipse(0, y - 1.3 * s, 0.25 * s, 0.45 * s, 1000, 60), // spinous process
    ellipse(0, y - 0.95 * s, 0.3 * s, 0.22 * s, 20, 4), // canal
  ];
}

function thorax(rng: Rng): Shape[] {
  const a = jitter(rng, 0.85, 0.08),
    b = jitter(rng, 0.58, 0.12);
  const y0 = -0.05;
  const shapes = bodyWall(rng, a, b, y0);
  const lungA = a * jitter(rng, 0.36, 0.1),
    lungB = b * jitter(rng, 0.72, 0.1);
  const lx = a * 0.45;
  shapes.push(ellipse(-lx, y0 + 0.02, lungA, lungB, -850, 25, jitter(rng, 0.1, 1)));
  shapes.push(ellipse(lx, y0 + 0.02, lungA * jitter(rng, 0.95, 0.05), lungB, -850, 25, -jitter(rng, 0.1, 1)));
  // Mediastinum and heart, left of the patient (image right), with enhanced chambers.
  const hx = jitter(rng, 0.12, 0.5),
    hy = y0 + jitter(rng, 0.05, 1);
  shapes.push(ellipse(hx, hy, a * 0.28, b * 0.45, 40, 6, 0.5));
  shapes.push(ellipse(hx + 0.05, hy - 0.02, a * 0.12, b * 0.22, 240, 10, 0.4));
  shapes.push(ellipse(hx - 0.08, hy + 0.04, a * 0.08, b * 0.15, 200, 10));
  // Pulmonary vessels: small enhanced dots inside the lungs.
  for (let k = 0; k < 30; k++) {
    const side = k % 2 ? 1 : -1;
    const t = 2 * Math.PI * rng.uniform(),
      r = Math.sqrt(rng.uniform()) * 0.8;
    const x = side * lx + r * lungA * Math.cos(t),
      y = y0 + 0.02 + r * lungB * Math.sin(t);
    if (Math.abs(x) < a * 0.2) continue;
    const s = 0.006 + 0.014 * rng.uniform();
    shapes.push(ellipse(x, y, s, s, 40 + 80 * rng.uniform(), 3));
  }
  const spineY = y0 - b * 0.62;
  shapes.push(ellipse(0.09, spineY + 0.13, 0.05, 0.05, 260, 8)); // descending aorta
  shapes.push(...vertebra(rng, spineY, 0.1));
  // Ribs: cortical bone cross-sections around the chest wall.
  const ribs = 6 + rng.int(4);
  for (let k = 0; k < ribs; k++) {
    const t = Math.PI * (0.15 + (0.7 * k) / (ribs - 1)) + (k % 2 ? 0 : Math.PI);
    const ra = a - 0.09,
      rb = b - 0.08;
    shapes.push(ellipse(ra * Math.cos(t), y0 + rb * Math.sin(t), 0.025, 0.015, 900, 60, t));
  }
  shapes.push(ellipse(0, y0 + b - 0.08, 0.05, 0.025, 700, 60)); // sternum
  return shapes;
}

function abdomen(rng: Rng): Shape[] {
  const a = jitter(rng, 0.85, 0.08),
    b = jitter(rng, 0.62, 0.12);
  const y0 = -0.05;
  const shapes = bodyWall(rng, a, b, y0);
  // Liver on the patient's right (image left), spleen on the left.
  shapes.push(
    ellipse(-a * 0.38, y0 + 0.08, a * jitter(rng, 0.42, 0.15), b * jitter(rng, 0.6, 0.15), 60, 8, 0.3),
  );
  shapes.push(ellipse(a * 0.55, y0 + 0.05, a * 0.16, b * 0.3, 50, 8, -0.5));
  // Bowel: fluid, enhanced wall, and gas pockets.
  const loops = 5 + rng.int(8);
  for (let k = 0; k < loops; k++) {
    const x = a * (0.6 * rng.uniform() - 0.1),
      y = y0 + b * (0.6 * rng.uniform() - 0.1);
    const s = 0.04 + 0.07 * rng.uniform();
    shapes.push(ellipse(x, y, s, s * jitter(rng, 0.8, 0.3), 70, 6, rng.uniform() * 3));
    shapes.push(ellipse(x, y, s * 0.75, s * 0.6, rng.uniform() < 0.4 ? -1000 : 10, 4, rng.uniform() * 3));
  }
  // Kidneys with enhanced cortex, aorta and IVC.
  const spineY = y0 - b * 0.6;
  for (const side of [-1, 1]) {
    const kx = side * a * jitter(rng, 0.3, 0.1),
      ky = spineY + 0.12;
    shapes.push(ellipse(kx, ky, 0.07, 0.11, 160, 10, side * 0.4));
    shapes.push(ellipse(kx + side * 0.01, ky, 0.035, 0.06, 30, 5, side * 0.4));
  }
  shapes.push(ellipse(0.05, spineY + 0.17, 0.04, 0.04, 250, 8));
  shapes.push(ellipse(-0.08, spineY + 0.17, 0.045, 0.035, 150, 8));
  shapes.push(...vertebra(rng, spineY, 0.11));
  return shapes;
}

function head(rng: Rng): Shape[] {
  const a = jitter(rng, 0.7, 0.08),
    b = jitter(rng, 0.86, 0.06);
  const skull = 0.04 + 0.03 * rng.uniform();
  const shapes: Shape[] = [
    ellipse(0, 0, a, b, 40, 5),
    ellipse(0, 0, a - 0.02, b - 0.02, 1300, 80),
    ellipse(0, 0, a - 0.02 - skull * 0.35, b - 0.02 - skull * 0.35, 450, 80),
    ellipse(0, 0, a - 0.02 - skull * 0.7, b - 0.02 - skull * 0.7, 1200, 80),
    ellipse(0, 0, a - 0.02 - skull, b - 0.02 - skull, 8, 2),
    ellipse(0, 0, a - 0.035 - skull, b - 0.035 - skull, 38, 4),
    ellipse(0, 0, (a - skull) * 0.7, (b - skull) * 0.72, 30, 4),
  ];
  const vs = jitter(rng, 0.1, 0.3);
  shapes.push(ellipse(-0.07, 0.05, vs * 0.6, vs * 2, 5, 2, 0.25));
  shapes.push(ellipse(0.07, 0.05, vs * 0.6, vs * 2, 5, 2, -0.25));
  shapes.push(ellipse(0, -0.15, 0.02, 0.04, 5, 2)); // third ventricle
  shapes.push(ellipse(0, b * 0.2, 0.006, b * 0.55, 8, 1)); // falx region CSF
  return shapes;
}

export function ctBody(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const kind = rng.int(3);
  const shapes = kind === 0 ? thorax(rng) : kind === 1 ? abdomen(rng) : head(rng);
  const out = new Float32Array(n * n).fill(-1000);
  const texture = smoothField(n, 24, rng);
  const h = (n - 1) / 2;
  for (const s of shapes) {
    const cos = Math.cos(s.phi),
      sin = Math.sin(s.phi);
    const r = Math.max(s.a, s.b);
    const c0 = Math.max(0, Math.floor((s.x0 - r) * h + h)),
      c1 = Math.min(n - 1, Math.ceil((s.x0 + r) * h + h));
    const r0 = Math.max(0, Math.floor(h - (s.y0 + r) * h)),
      r1 = Math.min(n - 1, Math.ceil(h - (s.y0 - r) * h));
    for (let row = r0; row <= r1; row++) {
      const y = (h - row) / h - s.y0;
      for (let col = c0; col <= c1; col++) {
        const x = (col - h) / h - s.x0;
        const u = (x * cos + y * sin) / s.a,
          v = (-x * sin + y * cos) / s.b;
        if (u * u + v * v <= 1) {
          const i = row * n + col;
          out[i] = s.hu <= -1000 ? -1000 : s.hu + s.texture * texture[i];
        }
      }
    }
  }
  return out;
}

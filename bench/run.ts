/**
 * `npm run bench`: prints timings of the operators and baselines at 256x256 and 320x320.
 * Numbers only; nothing passes or fails on time. Each figure is the median of several runs after
 * a warm-up, in milliseconds per call (per slice for reconstructions).
 */
import { fbp, ParallelBeamProjector } from "../operators/ct.js";
import { fft2c, ifft2c } from "../operators/fft.js";
import { samplingMask } from "../operators/masks.js";
import { MriCartesianOperator } from "../operators/mri.js";
import { generatePhantom, PHANTOM_KINDS } from "../phantoms/index.js";
import { makeVolume } from "../src/image/volume.js";
import { parseMethods } from "../src/recon/methods.js";
import { reconstruct } from "../src/recon/reconstruct.js";
import type { Acquisition } from "../src/recon/acquisition.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(fn: () => unknown, minRuns = 5, minMs = 300): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minMs) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    if (times.length >= 200) break;
  }
  return median(times);
}

const row = (label: string, ms: number) =>
  console.log(`${label.padEnd(52)} ${ms.toFixed(2).padStart(10)} ms`);

async function main() {
  const quick = process.argv.includes("--quick");
  console.log(`scorerecon bench — node ${process.version}, ${process.arch}${quick ? " (quick)" : ""}`);
  for (const n of [256, 320]) {
    console.log(`\n== ${n}x${n}`);
    const image = generatePhantom("shepp-logan", n, 0).data;
    const x = new Float32Array(2 * n * n);
    for (let i = 0; i < n * n; i++) x[2 * i] = image[i];
    row(
      "FFT forward + inverse (fft2c, ifft2c)",
      time(() => ifft2c(fft2c(x, n, n), n, n)),
    );
    const mri = new MriCartesianOperator(
      n,
      n,
      samplingMask(n, n, { kind: "random", acceleration: 4, centerFraction: 0.08, seed: 0 }),
    );
    const k = mri.forward(x);
    row(
      "MRI A (mask . FFT)",
      time(() => mri.forward(x)),
    );
    row(
      "MRI A^H",
      time(() => mri.adjoint(k)),
    );
    for (const views of [180, 60, 23]) {
      const ct = new ParallelBeamProjector({ size: n, views });
      const s = ct.forward(image);
      row(
        `CT projector forward, ${views} views`,
        time(() => ct.forward(image)),
      );
      row(
        `CT projector adjoint, ${views} views`,
        time(() => ct.adjoint(s)),
      );
      row(
        `FBP (ramp), ${views} views`,
        time(() => fbp(s, ct, { filter: "ramp" })),
      );
    }
    const volume = makeVolume(1, n, n, image);
    const studies: [Acquisition, string][] = [
      [
        {
          modality: "mri",
          rows: n,
          cols: n,
          mask: { kind: "random", acceleration: 4, centerFraction: 0.08, seed: 0 },
          noiseSigma: 0,
        },
        "zero-filled,tv,wavelet",
      ],
      [
        { modality: "ct", size: n, views: 60, detectors: Math.ceil(Math.SQRT2 * n), noise: { kind: "none" } },
        "fbp,sirt,tv,wavelet",
      ],
    ];
    if (quick) continue;
    for (const [acq, list] of studies) {
      const res = await reconstruct({ acquisition: acq, methods: parseMethods(list, acq), volume });
      for (const r of res.results)
        row(
          `${acq.modality.toUpperCase()} ${acq.modality === "mri" ? "4x" : "60 views"} ${r.method} per slice (PSNR ${r.metrics!.psnr.toFixed(1)} dB)`,
          r.seconds * 1000,
        );
    }
  }
  console.log(`\n== phantoms at 256x256 (slices per second)`);
  for (const kind of PHANTOM_KINDS) {
    let seed = 0;
    const ms = time(() => generatePhantom(kind, 256, seed++), 20);
    console.log(`${kind.padEnd(52)} ${(1000 / ms).toFixed(1).padStart(10)} slices/s`);
  }
}

await main();

/**
 * `npm run bench:score`: the default `score` method on 256x256 slices, end to end through the
 * pipeline (simulation excluded): seconds per slice, network evaluations per second, and slices
 * per minute with 1 and 2 worker processes. Numbers only; nothing passes or fails on time.
 * Usage: node dist/bench/score.js [--slices 2] [--method score:steps=25] [--settings mri-4x,ct-60-views]
 */
import { generatePhantom } from "../phantoms/index.js";
import { makeVolume } from "../src/image/volume.js";
import { initBackend } from "../src/prior/backend.js";
import type { Acquisition } from "../src/recon/acquisition.js";
import { parseMethods } from "../src/recon/methods.js";
import { reconstruct } from "../src/recon/reconstruct.js";
import { STANDARD_SETTINGS } from "../src/recon/evaluate.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

async function main() {
  const backend = await initBackend("auto", console.log);
  const slices = Number(arg("slices", "2"));
  const size = 256;
  for (const name of arg("settings", "mri-4x,ct-23-views").split(",")) {
    const setting = STANDARD_SETTINGS.find((s) => s.name === name);
    if (!setting) {
      console.error(
        `bench: unknown setting '${name}' (known: ${STANDARD_SETTINGS.map((s) => s.name).join(", ")})`,
      );
      process.exit(2);
    }
    const kind = setting.modality === "mri" ? "brain" : "ct-body";
    const data = new Float32Array(slices * size * size);
    for (let k = 0; k < slices; k++)
      data.set(generatePhantom(kind, size, 3_000_000 + k).data, k * size * size);
    const volume = makeVolume(slices, size, size, data, { modality: kind === "brain" ? "MR" : "CT" });
    const acquisition: Acquisition = setting.acquisition(size, size);
    const methods = parseMethods(arg("method", "score"), setting.modality);
    const { steps, samples } = methods[0].params;
    // dds evaluates the network once per step (on a batch of `samples`); the TV start is not one.
    const nfe = Number(steps) * slices;
    for (const workers of [1, 2]) {
      const t0 = performance.now();
      const r = await reconstruct({ acquisition, methods, volume, workers });
      const wall = (performance.now() - t0) / 1000;
      const perSlice = r.results[0].seconds / slices;
      console.log(
        `${name} ${methods[0].name} (${backend}, steps ${steps}, samples ${samples}), ${slices} slices, ${workers} worker(s): ` +
          `${perSlice.toFixed(1)} s/slice of compute, ${(wall / slices).toFixed(1)} s/slice wall, ` +
          `${((60 * slices) / wall).toFixed(2)} slices/min, ${(nfe / r.results[0].seconds).toFixed(2)} network evaluations/s ` +
          `(batch of ${samples}), PSNR ${r.results[0].metrics!.psnr.toFixed(2)} dB`,
      );
    }
  }
}

await main();

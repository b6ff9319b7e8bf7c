/**
 * `node dist/bench/upload.js`: the event loop's longest stall (perf_hooks monitorEventLoopDelay)
 * while the server receives and ingests one DICOM upload, by default 48 slices of 512 x 512 int16
 * (brain phantoms, explicit VR little endian, 24 MiB), on an in-process server bound to 127.0.0.1.
 * Numbers only.
 * Usage: node dist/bench/upload.js [--slices 48] [--size 512]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { generatePhantom } from "../phantoms/index.js";
import { createServer, listen } from "../server/app.js";
import { makeVolume } from "../src/image/volume.js";
import { writeDicomSeries } from "../src/io/dicom-write.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 ? process.argv[i + 1] : dflt);
};
const slices = arg("slices", "48"),
  size = arg("size", "512");

const root = mkdtempSync(join(tmpdir(), "scorerecon-bench-upload-"));
const data = new Float32Array(slices * size * size);
for (let k = 0; k < slices; k++) data.set(generatePhantom("brain", size, 100 + k).data, k * size * size);
const volume = makeVolume(slices, size, size, data, { modality: "MR", spacing: [1, 1, 2] });
const files = await writeDicomSeries(join(root, "series"), volume, {
  description: "bench",
  derivation: "bench",
});
const form = new FormData();
for (const f of files) form.append("files", new Blob([new Uint8Array(readFileSync(f))]), f.split("/").pop());

const s = createServer({ dataDir: join(root, "data"), workers: 1 });
await s.ready;
const server = await listen(s, 0, "127.0.0.1");
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
const t0 = performance.now();
const r = await fetch(`${url}/api/studies`, { method: "POST", body: form });
const seconds = (performance.now() - t0) / 1000;
h.disable();
if (r.status !== 201) throw new Error(`upload answered ${r.status}: ${await r.text()}`);
console.log(
  JSON.stringify({
    slices,
    size,
    files: files.length,
    uploadSeconds: +seconds.toFixed(2),
    eventLoopMaxStallMs: +(h.max / 1e6).toFixed(0),
    eventLoopP99Ms: +(h.percentile(99) / 1e6).toFixed(0),
  }),
);
server.close();
await s.close();
rmSync(root, { recursive: true, force: true });

/**
 * `npm run bench:queue`: throughput of the Redis queue (slices per minute) with 1 and 2
 * `scorerecon worker` processes, default `score` on 128x128 brain phantoms (4 slices), through the
 * same QueuePool the server and `reconstruct --queue` use. Starts its own redis-server (Debian's
 * redis-server package) on a free port. Numbers only.
 * Usage: node dist/bench/queue.js [--slices 4] [--size 128]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePhantom } from "../phantoms/index.js";
import { makeVolume } from "../src/image/volume.js";
import { QueuePool } from "../src/queue/queue-pool.js";
import { redisConnection } from "../src/queue/redis-connection.js";
import { STANDARD_SETTINGS } from "../src/recon/evaluate.js";
import { parseMethods } from "../src/recon/methods.js";
import { reconstruct } from "../src/recon/reconstruct.js";
import { folderSliceStore } from "../src/recon/slice-store.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

const port = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address() as AddressInfo;
    s.close(() => resolve(port));
  });
});
const redis = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no"], {
  stdio: "ignore",
});
const url = `redis://127.0.0.1:${port}`;
const ping = redisConnection(url);
ping.on("error", () => {});
while ((await ping.ping().catch(() => "")) !== "PONG") await new Promise((r) => setTimeout(r, 100));
ping.disconnect();

const slices = Number(arg("slices", "4"));
const size = Number(arg("size", "128"));
const data = new Float32Array(slices * size * size);
for (let k = 0; k < slices; k++)
  data.set(generatePhantom("brain", size, 3_100_000 + k).data, k * size * size);
const volume = makeVolume(slices, size, size, data, { modality: "MR" });
const setting = STANDARD_SETTINGS.find((s) => s.name === "mri-4x")!;
const bin = new URL("../src/cli/bin.js", import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), "scorerecon-bench-queue-"));

for (const workers of [1, 2]) {
  const children: ChildProcess[] = [];
  for (let i = 0; i < workers; i++)
    children.push(
      spawn(process.execPath, [bin, "worker", "--redis", url, "--data-dir", dataDir], { stdio: "ignore" }),
    );
  await new Promise((r) => setTimeout(r, 3000)); // workers load their modules
  const store = `run-${workers}`;
  const pool = new QueuePool(url, dataDir, store);
  const t0 = performance.now();
  await reconstruct({
    acquisition: setting.acquisition(size, size),
    methods: parseMethods("score", "mri"),
    volume,
    pool,
    store: folderSliceStore(join(dataDir, store)),
  });
  const s = (performance.now() - t0) / 1000;
  await pool.close();
  console.log(
    `${workers} worker process(es): ${slices} slices of score (${size}x${size}) in ${s.toFixed(1)} s = ${((60 * slices) / s).toFixed(2)} slices/min`,
  );
  for (const c of children) c.kill("SIGTERM");
}
redis.kill();

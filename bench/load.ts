/**
 * `npm run bench:load`: the API under load. Starts a server (bench/load-server.ts, its own
 * process, 2 workers) on 127.0.0.1 with a temporary data folder holding a 512 x 512 x 48 CT study
 * and 2000 finished job records, then for 20 s runs 50 clients, each sending its next request as
 * soon as the last one is answered (job and study lists, a job, slices of the study, /healthz),
 * while a default CT job (fbp and tv on all 48 slices, 60 views) runs and, from second 2, a second
 * 48-slice 512^2 study is uploaded and ingested. Prints the latency percentiles of the clients'
 * requests and the server's event loop delay: its longest stall and the longest ones with the
 * second they began (job start at 0 s, upload from 2 s). Bounded: 20 s of load, then everything
 * is stopped and the folder removed.
 * Usage: node dist/bench/load.js [--clients 50] [--seconds 20] [--slices 48] [--size 512]
 *   [--methods fbp,tv] [--upload 0]
 */
import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePhantom } from "../phantoms/index.js";
import { makeVolume } from "../src/image/volume.js";
import { writeVolume } from "../src/io/index.js";
import { compiledModule } from "../src/package-root.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const CLIENTS = arg("clients", 50);
const SECONDS = arg("seconds", 20);
const SLICES = arg("slices", 48);
const SIZE = arg("size", 512);
const i = process.argv.indexOf("--methods");
const METHODS = (i >= 0 ? process.argv[i + 1] : "fbp,tv").split(",");
/** --upload 0 leaves the upload out (to tell its stalls from the job's). */
const UPLOAD = arg("upload", 1) !== 0;

interface LoopStats {
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  stalls: [number, number][];
  since: number;
}

const root = mkdtempSync(join(tmpdir(), "scorerecon-load-"));
const dataDir = join(root, "data");
try {
  // Two CT studies as NIfTI files: one uploaded before the load (the job's), one during it.
  const files: string[] = [];
  for (const [i, name] of ["job.nii.gz", "upload.nii.gz"].entries()) {
    const data = new Float32Array(SLICES * SIZE * SIZE);
    const slice = generatePhantom("ct-body", SIZE, 100 * i).data;
    for (let k = 0; k < SLICES; k++) data.set(slice, k * SIZE * SIZE);
    const path = join(root, name);
    await writeVolume(path, makeVolume(SLICES, SIZE, SIZE, data, { modality: "CT", units: "HU" }));
    files.push(path);
  }
  // 2000 finished jobs of an earlier study, as a server that has run for a while keeps them.
  for (let i = 0; i < 2000; i++) {
    const id = randomUUID();
    mkdirSync(join(dataDir, "jobs", id), { recursive: true });
    const record = {
      id,
      created: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
      study: randomUUID(),
      plan: {
        seriesId: randomUUID(),
        slices: [0, 1],
        methods: [{ name: "fbp", params: {} }],
        modality: "ct",
      },
      state: "done",
      restarts: 0,
      progress: { fbp: { done: 1, total: 1 } },
      metrics: { fbp: [] },
      seconds: { fbp: 0.1 },
    };
    writeFileSync(join(dataDir, "jobs", id, "job.json"), JSON.stringify(record));
  }

  const server = fork(compiledModule(new URL("./load-server.js", import.meta.url)), [dataDir, "2"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: process.env.LOAD_PROF ? ["--cpu-prof", "--cpu-prof-dir=" + process.env.LOAD_PROF] : [],
  });
  const message = <T>() => new Promise<T>((resolve) => server.once("message", (m) => resolve(m as T)));
  const { port } = await message<{ port: number }>();
  const base = `http://127.0.0.1:${port}`;
  try {
    const upload = async (path: string) => {
      const form = new FormData();
      form.append("modality", "CT");
      form.append("files", new Blob([readFileSync(path)]), "study.nii.gz");
      const res = await fetch(`${base}/api/studies`, { method: "POST", body: form });
      if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
      return (await res.json()) as { id: string; series: { id: string }[] };
    };
    const study = await upload(files[0]);
    const sid = study.series[0].id;

    server.send("reset");
    const t0 = performance.now();
    const res = await fetch(`${base}/api/jobs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ study: study.id, methods: METHODS.map((name) => ({ name })) }),
    });
    const job = (await res.json()) as { id: string };
    if (res.status !== 201) throw new Error(`job: ${res.status} ${JSON.stringify(job)}`);
    let uploadSeconds = NaN;
    const uploading = new Promise((r) => setTimeout(r, 2000)).then(async () => {
      if (!UPLOAD) return;
      const u0 = performance.now();
      await upload(files[1]);
      uploadSeconds = (performance.now() - u0) / 1000;
    });

    const routes = [
      "/api/jobs",
      "/api/studies",
      `/api/jobs/${job.id}`,
      () => `/api/studies/${study.id}/series/${sid}/slices/${Math.floor(Math.random() * SLICES)}`,
      "/healthz",
    ];
    const latencies: number[] = [];
    let errors = 0;
    const end = t0 + SECONDS * 1000;
    const client = async (c: number) => {
      for (let i = c; performance.now() < end; i++) {
        const r = routes[i % routes.length];
        const path = typeof r === "function" ? r() : r;
        const q0 = performance.now();
        try {
          const answer = await fetch(base + path);
          await answer.arrayBuffer();
          if (answer.status !== 200) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - q0);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    await uploading;
    server.send("stats");
    const loop = await message<LoopStats>();
    const state = (await (await fetch(`${base}/api/jobs/${job.id}`)).json()) as {
      state: string;
      progress: number;
    };

    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    process.stdout.write(
      [
        `${CLIENTS} clients for ${SECONDS} s on ${base}: ${latencies.length} requests, ${errors} not 200`,
        `latency p50 ${ms(p(0.5))}, p95 ${ms(p(0.95))}, p99 ${ms(p(0.99))}, max ${ms(latencies.at(-1)!)}`,
        `server event loop: longest stall ${ms(loop.maxMs)}, p99 delay ${ms(loop.p99Ms)}, mean ${ms(loop.meanMs)}`,
        `longest stalls (second they began: ms): ${loop.stalls.map(([t, d]) => `${t.toFixed(1)}: ${d.toFixed(0)}`).join(", ") || "none over 50 ms"}`,
        `during the load: the job (${METHODS.join(", ")} on ${SLICES} x ${SIZE}^2 CT) got to ${(100 * state.progress).toFixed(0)}% (${state.state}); ${UPLOAD ? `the upload of ${SLICES} x ${SIZE}^2 took ${uploadSeconds.toFixed(1)} s` : "no upload"}`,
        "",
      ].join("\n"),
    );
  } finally {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    server.kill("SIGKILL");
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

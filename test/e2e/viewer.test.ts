/**
 * The viewer end to end in Debian's Chromium (headless, playwright-core): upload a phantom DICOM
 * series, run zero-filled, TV and score on two slices from the job form, then check the
 * comparison grid, synchronised window/level and scrolling, the metrics panel against the API,
 * and the DICOM export. Then the states a job goes through: a failed job's reason, switching
 * jobs while the first one's slices still answer, the 1x2 layout, the difference map's colour bar,
 * slice ranges, and a running job whose slices the test holds back (SliceGate) to check that only
 * finished slices are asked for. With SCORERECON_SCREENSHOTS=DIR the screens are saved there
 * (docs/screenshots holds the committed ones).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeDicomSeries } from "../../src/io/dicom-write.js";
import { unzip } from "../helpers.js";
import { readVolume } from "../../src/io/index.js";
import { createServer, listen, type ScoreReconServer } from "../../server/app.js";
import { UserError } from "../../src/errors.js";
import type { SliceStore } from "../../src/recon/slice-store.js";

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: .ci/run installs the chromium package`);
if (!available)
  console.warn(`skipping the viewer e2e tests: ${CHROMIUM} is not installed (apt-get install chromium)`);

const root = mkdtempSync(join(tmpdir(), "scorerecon-e2e-"));
const shots = process.env.SCORERECON_SCREENSHOTS ?? join(root, "screenshots");
mkdirSync(shots, { recursive: true });
const N = 96;

let browser: Browser;
const servers: { s: ScoreReconServer; http: Server }[] = [];

async function startServer(token?: string): Promise<string> {
  return (await startServerWith(token)).url;
}

async function startServerWith(token?: string): Promise<{ url: string; s: ScoreReconServer }> {
  const s = createServer({ dataDir: join(root, `data-${servers.length}`), workers: 2, token });
  await s.ready;
  const http = await listen(s, 0, "127.0.0.1");
  servers.push({ s, http });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/`, s };
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

/** A phantom MR series of `slices` slices (N x N) as DICOM files in a new folder. */
async function phantomSeries(name: string, slices = 3): Promise<string[]> {
  const data = new Float32Array(slices * N * N);
  for (let k = 0; k < slices; k++) data.set(generatePhantom("brain", N, 700 + k).data, k * N * N);
  return writeDicomSeries(
    join(root, name),
    makeVolume(slices, N, N, data, { modality: "MR", spacing: [1, 1, 2] }),
    { description: "phantom", derivation: "e2e" },
  );
}

interface StudyRef {
  id: string;
  series: { id: string }[];
}

async function uploadStudy(url: string, files: string[]): Promise<StudyRef> {
  const form = new FormData();
  for (const f of files) form.append("files", new Blob([readFileSync(f)]), basename(f));
  const res = await fetch(`${url}api/studies`, { method: "POST", body: form });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as StudyRef;
}

async function createJob(url: string, study: StudyRef, slices: [number, number], methods: string[]) {
  const res = await fetch(`${url}api/jobs`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      study: study.id,
      series: study.series[0].id,
      slices,
      modality: "mri",
      methods: methods.map((name) => ({ name, params: {} })),
    }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Polls the API until the job is final; returns its record. */
async function finalJob(url: string, id: string): Promise<{ state: string; error?: { message: string } }> {
  for (;;) {
    const job = (await (await fetch(`${url}api/jobs/${id}`)).json()) as { state: string };
    if (["done", "failed", "cancelled", "interrupted"].includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Holds a server's finished slices back: the slice store's put of a job's slice k waits until the
 * test calls release(k), then stores it, or fails the job with the message given to fail(k).
 */
class SliceGate {
  private readonly gates = new Map<number, { promise: Promise<void>; open: () => void }>();
  private readonly failures = new Map<number, string>();

  constructor(s: ScoreReconServer) {
    const original = s.storage.sliceStore.bind(s.storage);
    s.storage.sliceStore = (id: string): SliceStore => {
      const inner = original(id);
      return {
        get: (k) => inner.get(k),
        put: async (k, output) => {
          await this.gate(k.slice).promise;
          const why = this.failures.get(k.slice);
          if (why) throw new UserError(why, "store_failed");
          return inner.put(k, output);
        },
      };
    };
  }

  private gate(slice: number) {
    let g = this.gates.get(slice);
    if (!g) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      g = { promise, open };
      this.gates.set(slice, g);
    }
    return g;
  }

  release(slice: number): void {
    this.gate(slice).open();
  }

  fail(slice: number, message: string): void {
    this.failures.set(slice, message);
    this.release(slice);
  }

  releaseAll(): void {
    for (let k = 0; k < 64; k++) this.release(k);
  }
}

/** Every response of the page with status 400 or more, and every console error. */
function watchFailures(page: Page): string[] {
  const seen: string[] = [];
  page.on("response", (r) => r.status() >= 400 && seen.push(`${r.status()} ${r.url()}`));
  page.on("console", (m) => m.type() === "error" && seen.push(`console: ${m.text()}`));
  return seen;
}

/** Waits until every cell shows an image whose id passes `test` (a regular expression source). */
const waitForCells = (page: Page, pattern: string, timeout = 30_000) =>
  page.waitForFunction(
    (p) =>
      [...document.querySelectorAll<HTMLElement>(".cell")].every((c) =>
        new RegExp(p).test(c.dataset.imageId ?? ""),
      ),
    pattern,
    { timeout },
  );

/** Two animation frames: Cornerstone draws on the next frame after displayImage. */
const frames = (page: Page) =>
  page.evaluate(
    () => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  );

type CellData = { imageId: string; rows: string; cols: string; ww: string; wc: string };
const cellData = (page: Page) =>
  page.$$eval(".cell", (cells) => cells.map((c) => ({ ...(c as HTMLElement).dataset }) as CellData));

beforeAll(async () => {
  if (!available) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const { s, http } of servers) {
    http.close();
    await s.close();
  }
});

describe.skipIf(!available)("viewer (Chromium)", () => {
  it("uploads a series, runs a comparison from the form and compares in four synchronised viewports", async () => {
    const url = await startServer();
    const files = await phantomSeries("series");
    const page = await newPage();
    await page.goto(url);
    await page.setInputFiles("#file-input", files);
    await page.waitForSelector("#study-list li[data-series]");
    await page.waitForSelector("#mask-preview");
    // The acquisition fields' defaults, ranges and choices are the API's (GET /api/defaults).
    type Field = { default?: string | number; maximum?: number; enum?: string[] };
    const fields = (await (await fetch(`${url}api/defaults`)).json()) as Record<
      "mri" | "ct",
      Record<string, Field>
    >;
    const acceleration = 'input[name="acceleration"]';
    expect(await page.inputValue(acceleration)).toBe(String(fields.mri.acceleration.default));
    expect(await page.getAttribute(acceleration, "max")).toBe(String(fields.mri.acceleration.maximum));
    expect(await page.getAttribute('input[name="views"]', "max")).toBe(String(fields.ct.views.maximum));
    expect(await page.inputValue('input[name="views"]')).toBe(String(fields.ct.views.default));
    expect(
      await page.$$eval('select[name="mask"] option', (o) => o.map((x) => (x as HTMLOptionElement).value)),
    ).toEqual(fields.mri.mask.enum);
    expect(await page.inputValue('select[name="mask"]')).toBe(String(fields.mri.mask.default));
    await page.fill('input[name="steps"]', "4");
    expect(await page.inputValue('input[name="sliceStart"]')).toBe("0");
    expect(await page.inputValue('input[name="sliceEnd"]')).toBe("2");
    await page.screenshot({ path: join(shots, "study-and-job-form.png") });
    await page.click('#job-form button[type="submit"]');
    await page.waitForSelector("#job-state");
    await page.screenshot({ path: join(shots, "job-progress.png") });
    await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "done", null, {
      timeout: 120_000,
    });
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll<HTMLElement>(".cell")].every((c) =>
          c.dataset.imageId?.includes("/slices/0"),
        ),
      null,
      { timeout: 30_000 },
    );
    expect(await page.locator("#error").isHidden()).toBe(true);

    // Four viewports: ground truth, TV, score and the score's difference map, N x N, not blank.
    const before = await cellData(page);
    expect(before.map((c) => c.imageId.replace(/^.*\/(studies|results)\//, "$1/"))).toEqual([
      expect.stringMatching(/^studies\/.*\/slices\/0$/),
      "results/tv/slices/0",
      "results/score/slices/0",
      "results/score/error/slices/0",
    ]);
    for (const c of before) expect([c.rows, c.cols]).toEqual([String(N), String(N)]);
    const spreads = await page.$$eval(".cell .viewport canvas", (canvases) =>
      canvases.map((cv) => {
        const c = cv as HTMLCanvasElement;
        const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
        let lo = 255,
          hi = 0;
        for (let i = 0; i < d.length; i += 4) {
          lo = Math.min(lo, d[i]);
          hi = Math.max(hi, d[i]);
        }
        return hi - lo;
      }),
    );
    expect(spreads).toHaveLength(4);
    for (const s of spreads) expect(s).toBeGreaterThan(50);
    await page.screenshot({ path: join(shots, "comparison.png") });

    // Window/level dragged in the TV viewport changes the VOI of the other three.
    const box = (await page.locator(".cell").nth(1).boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2 + 40, { steps: 5 });
    await page.mouse.up();
    // Synchronizers act on the next rendered frame: wait until the viewports agree.
    await page.waitForFunction((old) => {
      const d = [...document.querySelectorAll<HTMLElement>(".cell")].map((c) => c.dataset);
      const same = d[0].ww === d[1].ww && d[2].ww === d[1].ww && d[0].wc === d[1].wc && d[2].wc === d[1].wc;
      return same && d[1].ww !== old && d[3].ww !== old;
    }, before[1].ww);
    await page.waitForTimeout(200);
    const after = await cellData(page);
    expect(after[1].ww).not.toBe(before[1].ww);
    for (const i of [0, 2, 3]) expect(after[i].ww, `viewport ${i}`).not.toBe(before[i].ww);
    expect([after[0].ww, after[0].wc]).toEqual([after[1].ww, after[1].wc]);
    expect([after[2].ww, after[2].wc]).toEqual([after[1].ww, after[1].wc]);
    expect(after[3].wc).toBe("0");

    // The mouse wheel over one viewport moves every viewport to the next slice.
    const first = (await page.locator(".cell").nth(0).boundingBox())!;
    await page.mouse.move(first.x + first.width / 2, first.y + first.height / 2);
    await page.mouse.wheel(0, 120);
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll<HTMLElement>(".cell")].every((c) =>
          c.dataset.imageId?.endsWith("/slices/1"),
        ),
      null,
      { timeout: 10_000 },
    );
    await page.waitForFunction(() =>
      document.getElementById("slice-label")?.textContent?.startsWith("slice 1"),
    );

    // The metrics panel shows the API's numbers for this slice and the means.
    const jobId = /job=([0-9a-f-]{36})/.exec(page.url())![1];
    const metrics = await (await fetch(`${url}api/jobs/${jobId}/metrics`)).json();
    await page.waitForFunction(
      () =>
        document
          .querySelector('#metrics-table tr[data-method="score"] td[data-key="psnr"]')
          ?.getAttribute("data-value") !== "",
    );
    const shown = await page.$$eval("#metrics-table tr[data-method]", (rows) =>
      rows.map((r) => ({
        method: (r as HTMLElement).dataset.method!,
        values: [...r.querySelectorAll("td[data-key]")].map((td) => Number(td.getAttribute("data-value"))),
      })),
    );
    expect(shown.map((r) => r.method)).toEqual(["zero-filled", "tv", "score"]);
    for (const { method, values } of shown) {
      const slice = metrics.perSlice[method].find((m: { slice: number }) => m.slice === 1);
      const mean = metrics.mean[method];
      expect(values).toEqual([slice.psnr, slice.ssim, slice.nmse, mean.psnr, mean.ssim, mean.nmse]);
    }
    const best = await page.$eval(
      '#metrics-table td[data-key="psnr"].best',
      (td) => td.parentElement!.dataset.method,
    );
    const psnrs = shown.map((r) => r.values[0]);
    expect(best).toBe(shown[psnrs.indexOf(Math.max(...psnrs))].method);

    // Export: the TV result as a DICOM zip, which the studies I/O reads back.
    await page.selectOption("#export-method", "tv");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-dicom")]);
    const zipPath = join(root, "tv-dicom.zip");
    await download.saveAs(zipPath);
    const dir = join(root, "tv-dicom");
    await unzip(zipPath, dir);
    const v = await readVolume(dir);
    expect([v.slices, v.rows, v.cols]).toEqual([2, N, N]);
    await page.close();
  }, 240_000);

  it("asks for the API token once, and says so clearly when it is wrong", async () => {
    const url = await startServer("e2e-token");
    const page = await newPage();
    await page.goto(url);
    await page.waitForSelector("#token-form:not([hidden])");
    expect(await page.textContent("#error")).toMatch(/needs an API token/);
    await page.fill("#token", "wrong");
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => /refused/.test(document.getElementById("error")?.textContent ?? ""));
    await page.fill("#token", "e2e-token");
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById("error")?.hidden === true);
    expect(await page.isHidden("#token-form")).toBe(true);
    expect(await page.title()).toBe("scorerecon viewer");
    await page.close();
  }, 60_000);
});

describe.skipIf(!available)("viewer: job states, layout and scale (Chromium)", () => {
  // Two finished jobs on one study: A over slice 0 (zero-filled and TV), B over slices 1 and 2.
  let url: string;
  let study: StudyRef;
  let jobA: string;
  let jobB: string;

  beforeAll(async () => {
    if (!available) return;
    url = await startServer();
    study = await uploadStudy(url, await phantomSeries("series-ab"));
    jobA = await createJob(url, study, [0, 1], ["zero-filled", "tv"]);
    jobB = await createJob(url, study, [1, 3], ["zero-filled"]);
    for (const id of [jobA, jobB]) expect((await finalJob(url, id)).state).toBe("done");
  }, 120_000);

  it("a failed job says why, and the reason stays on the page", async () => {
    const { url, s } = await startServerWith();
    const gate = new SliceGate(s);
    try {
      const ref = await uploadStudy(url, await phantomSeries("series-fail"));
      const id = await createJob(url, ref, [0, 2], ["zero-filled"]);
      const page = await newPage();
      await page.goto(`${url}#job=${id}`);
      await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "running");
      gate.release(0);
      await page.waitForFunction(() => document.querySelectorAll(".cell.missing").length === 0);
      gate.fail(1, "the results disk is full");
      await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "failed");
      // The viewer re-reads the failed job: once that is over, the reason must still be shown.
      await page.waitForLoadState("networkidle");
      await frames(page);
      expect(await page.textContent("#progress")).toContain("the results disk is full");
      expect(await page.isVisible("#job-error")).toBe(true);
      expect(await page.getAttribute(`#job-list li[data-job="${id}"]`, "title")).toContain(
        "the results disk is full",
      );
      await page.screenshot({ path: join(shots, "failed-job.png") });
      // Opened afresh, the failed job says why too.
      await page.reload();
      await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "failed");
      await page.waitForLoadState("networkidle");
      expect(await page.textContent("#job-error")).toContain("the results disk is full");
      await page.close();
    } finally {
      gate.releaseAll();
    }
  }, 120_000);

  it("switching jobs never shows the first job's images, also when they answer late", async () => {
    const page = await newPage();
    // A's results answer only once B is open: late responses must not reach B's viewports.
    let held = 0;
    let releaseA!: () => void;
    const lateA = new Promise<void>((r) => (releaseA = r));
    const answered: Promise<void>[] = [];
    await page.route(`**/api/jobs/${jobA}/results/**`, (route) => {
      held++;
      answered.push(lateA.then(() => route.continue()).catch(() => {}));
    });
    await page.goto(`${url}#job=${jobA}`);
    await expect.poll(() => held, { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    await page.waitForSelector(`#job-list li[data-job="${jobB}"]`);
    await page.evaluate(() => {
      const w = window as unknown as { rendered: string[] };
      w.rendered = [];
      for (const el of document.querySelectorAll(".cell .viewport"))
        el.addEventListener("cornerstoneimagerendered", (e) =>
          w.rendered.push((e as CustomEvent<{ image: { imageId: string } }>).detail.image.imageId),
        );
    });
    await page.click(`#job-list li[data-job="${jobB}"]`);
    const ofB = `(/jobs/${jobB}/|/studies/${study.id}/series/[^/]+/slices/[12]$)`;
    await waitForCells(page, ofB);
    releaseA();
    await Promise.all(answered);
    await page.waitForLoadState("networkidle");
    await frames(page);
    const ids = (await cellData(page)).map((c) => c.imageId);
    for (const id of ids) expect(id).toMatch(new RegExp(ofB));
    const rendered = await page.evaluate(() => (window as unknown as { rendered: string[] }).rendered);
    expect(rendered.length).toBeGreaterThan(0);
    // Only B's images, or the blank of a viewport that waits for one.
    for (const id of rendered)
      expect(id, "an image rendered after B was opened").toMatch(new RegExp(`^blank$|${ofB}`));
    expect(await page.$$eval(".cell select", (s) => s.map((x) => (x as HTMLSelectElement).value))).toEqual([
      "truth",
      "zero-filled",
      "zero-filled",
      "zero-filled error",
    ]);
    await page.close();
  }, 120_000);

  it("writes slice ranges as the form takes them: end-exclusive [from, to)", async () => {
    const page = await newPage();
    await page.goto(`${url}#job=${jobB}`);
    await waitForCells(page, "/slices/1$");
    expect(await page.textContent(`#job-list li[data-job="${jobA}"]`)).toContain("slices [0, 1)");
    expect(await page.textContent(`#job-list li[data-job="${jobB}"]`)).toContain("slices [1, 3)");
    expect(await page.getAttribute(`#job-list li[data-job="${jobB}"]`, "title")).toBe(
      "slices [1, 3) · 2 slices",
    );
    expect(await page.textContent("#slice-label")).toBe("slice 1 of [1, 3)");
    // The form: "from" and "to (excl.)", with the range they make written the same way.
    await page.click("#study-list li[data-series]");
    await page.fill('input[name="sliceStart"]', "1");
    await page.fill('input[name="sliceEnd"]', "3");
    expect(await page.textContent("#slice-range")).toBe("slices [1, 3) · 2 slices");
    await page.close();
  }, 60_000);

  it("the 1x2 layout resizes the canvases at once, without R", async () => {
    const page = await newPage();
    await page.goto(`${url}#job=${jobA}`);
    await waitForCells(page, "/slices/0$");
    const sizes = () =>
      page.$$eval(".cell", (cells) =>
        cells
          .filter((c) => (c as HTMLElement).offsetParent !== null)
          .map((c) => {
            const v = c.querySelector<HTMLElement>(".viewport")!;
            const canvas = c.querySelector<HTMLCanvasElement>(".viewport canvas")!;
            return { canvas: [canvas.width, canvas.height], box: [v.clientWidth, v.clientHeight] };
          }),
      );
    const before = await sizes();
    expect(before).toHaveLength(4);
    for (const c of before) expect(c.canvas).toEqual(c.box);

    // 1x2: two viewports, each canvas as large as its viewport without pressing R.
    await page.click('[data-layout="1x2"]');
    await page.waitForFunction(
      () => {
        const shown = [...document.querySelectorAll<HTMLElement>(".cell")].filter((c) => c.offsetParent);
        return (
          shown.length === 2 &&
          shown.every((c) => {
            const v = c.querySelector<HTMLElement>(".viewport")!;
            const canvas = c.querySelector<HTMLCanvasElement>(".viewport canvas")!;
            return canvas.width === v.clientWidth && canvas.height === v.clientHeight;
          })
        );
      },
      null,
      { timeout: 10_000 },
    );
    const wide = await sizes();
    expect(wide[0].canvas[1]).toBeGreaterThan(1.5 * before[0].canvas[1]);
    // The image is fitted to its new canvas too (scale: canvas pixels per image pixel).
    const fit = Math.min(...wide[0].canvas) / N;
    await page.waitForFunction(
      (fit) =>
        Math.abs(Number(document.querySelector<HTMLElement>('.cell[data-index="0"]')!.dataset.scale) - fit) <
        1e-3,
      fit,
      { timeout: 10_000 },
    );
    await page.screenshot({ path: join(shots, "layout-1x2.png") });
    await page.keyboard.press("2");
    await page.waitForFunction(() =>
      [...document.querySelectorAll<HTMLElement>(".cell")].every((c) => {
        const v = c.querySelector<HTMLElement>(".viewport")!;
        const canvas = c.querySelector<HTMLCanvasElement>(".viewport canvas")!;
        return c.offsetParent && canvas.width === v.clientWidth && canvas.height === v.clientHeight;
      }),
    );
    await page.close();
  }, 120_000);

  it("the difference map has a colour bar with its sign convention and its scale", async () => {
    const page = await newPage();
    await page.goto(`${url}#job=${jobA}`);
    await waitForCells(page, "/slices/0$");
    // The colour bar: on the difference map only, with its sign convention and its scale.
    const bars = page.locator(".cell .colorbar:visible");
    expect(await bars.count()).toBe(1);
    const bar = page.locator('.cell[data-index="3"] .colorbar');
    expect(await bar.isVisible()).toBe(true);
    expect(await bar.locator(".caption").textContent()).toMatch(/reconstruction − truth/);
    const ww = Number(await page.getAttribute('.cell[data-index="3"]', "data-ww"));
    const ticks = async () => (await bar.locator(".tick").allTextContents()).map(Number);
    expect(await ticks()).toEqual([Number((ww / 2).toPrecision(3)), 0, Number((-ww / 2).toPrecision(3))]);
    await page.screenshot({ path: join(shots, "comparison-colour-bar.png") });
    // The scale follows the window: widen it by a drag in the TV viewport.
    const box = (await page.locator(".cell").nth(1).boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(
      (old) => Number(document.querySelector<HTMLElement>('.cell[data-index="3"]')!.dataset.ww) !== old,
      ww,
    );
    await frames(page);
    const wider = Number(await page.getAttribute('.cell[data-index="3"]', "data-ww"));
    expect((await ticks())[0]).toBe(Number((wider / 2).toPrecision(3)));

    await page.close();
  }, 120_000);

  it("fetches only finished slices: no 404 in the console while a job runs", async () => {
    const { url, s } = await startServerWith();
    const gate = new SliceGate(s);
    try {
      const ref = await uploadStudy(url, await phantomSeries("series-running"));
      const id = await createJob(url, ref, [0, 2], ["zero-filled", "tv"]);
      const page = await newPage();
      const failures = watchFailures(page);
      await page.goto(`${url}#job=${id}`);
      await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "running");
      // Nothing finished: the results' viewports say so and ask nothing of the server.
      await page.waitForFunction(() => document.querySelectorAll(".cell.missing").length === 3, null, {
        timeout: 10_000,
      });
      expect(await page.textContent('.cell[data-index="1"] .voi')).toMatch(/not finished/);
      expect(failures).toEqual([]);
      gate.release(0);
      await waitForCells(page, "/slices/0$");
      // Slice 1 is not finished: scrolling there shows the ground truth and says so for the rest.
      await page.keyboard.press("j");
      await page.waitForFunction(() =>
        document.getElementById("slice-label")?.textContent?.startsWith("slice 1"),
      );
      await page.waitForFunction(() => document.querySelectorAll(".cell.missing").length === 3);
      // The ground truth's image loads on its own time after the slice changes.
      await page.waitForFunction(
        () =>
          /\/slices\/1$/.test(
            document.querySelector('.cell[data-index="0"]')?.getAttribute("data-image-id") ?? "",
          ),
        null,
        { timeout: 10_000 },
      );
      expect(await page.getAttribute('.cell[data-index="0"]', "data-image-id")).toMatch(/\/slices\/1$/);
      for (const i of [1, 2, 3]) {
        expect(await page.getAttribute(`.cell[data-index="${i}"]`, "data-image-id")).toBe("");
        expect(await page.textContent(`.cell[data-index="${i}"] .voi`)).toMatch(/slice 1 is not finished/);
      }
      await page.screenshot({ path: join(shots, "unfinished-slices.png") });
      gate.release(1);
      await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "done", null, {
        timeout: 60_000,
      });
      await waitForCells(page, "/slices/1$");
      await page.waitForLoadState("networkidle");
      expect(failures).toEqual([]);
      await page.close();
    } finally {
      gate.releaseAll();
    }
  }, 120_000);

  it("trains a prior from the Priors panel: live loss curve and grid, then a comparison with it", async () => {
    const url = await startServer();
    const files = await phantomSeries("prior-series");
    const page = await newPage();
    const failures = watchFailures(page);
    await page.goto(url);
    await page.setInputFiles("#file-input", files);
    await page.waitForSelector("#study-list li[data-series]");
    await page.waitForSelector('#prior-form input[name="study"]:checked');
    expect(
      await page.$$eval('#prior-form select[name="init"] option', (o) =>
        o.map((x) => (x as HTMLOptionElement).value),
      ),
    ).toEqual(["", "mri"]);
    await page.fill('#prior-form input[name="name"]', "e2e-prior");
    await page.fill('#prior-form input[name="steps"]', "40");
    await page.fill('#prior-form input[name="size"]', "16");
    await page.fill('#prior-form input[name="batch"]', "2");
    await page.click('#prior-form button[type="submit"]');
    // The loss curve grows while it trains.
    const points = () => page.$eval("#loss-plot", (c) => Number((c as HTMLElement).dataset.points ?? 0));
    await page.waitForFunction(
      () => Number(document.getElementById("loss-plot")?.dataset.points) >= 2,
      null,
      {
        timeout: 120_000,
      },
    );
    const early = await points();
    await page.waitForFunction(
      (n) => Number(document.getElementById("loss-plot")?.dataset.points) > n,
      early,
      { timeout: 120_000 },
    );
    expect(await page.textContent("#training-status")).toMatch(/step \d+ of 40/);
    await page.screenshot({ path: join(shots, "priors-training.png") });
    await page.waitForFunction(
      () => document.getElementById("training-state")?.textContent === "ready",
      null,
      {
        timeout: 180_000,
      },
    );
    expect(await points()).toBe(40);
    await page.waitForFunction(() => {
      const img = document.getElementById("training-grid") as HTMLImageElement;
      return !img.hidden && img.complete && img.naturalWidth > 0;
    });
    // Now in the job form's model list: a comparison with it.
    await page.waitForSelector('#job-form select[name="model"] option[value="e2e-prior"]', {
      state: "attached",
    });
    await page.selectOption('#job-form select[name="model"]', "e2e-prior");
    await page.fill('#job-form input[name="steps"]', "3");
    await page.click('#job-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById("job-state")?.textContent === "done", null, {
      timeout: 120_000,
    });
    const jobs = (await (await fetch(`${url}api/jobs`)).json()) as { jobs: { id: string }[] };
    const job = (await (await fetch(`${url}api/jobs/${jobs.jobs.at(-1)!.id}`)).json()) as {
      methods: { name: string; params: { model?: string } }[];
    };
    expect(job.methods.find((m) => m.params.model !== undefined)?.params.model).toBe("e2e-prior");
    expect(await page.locator("#error").isHidden()).toBe(true);
    expect(failures).toEqual([]);
  }, 300_000);
});

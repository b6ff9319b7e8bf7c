/**
 * The viewer end to end in Debian's Chromium (headless, playwright-core): upload a phantom DICOM
 * series, run zero-filled, TV and score on two slices from the job form, then check the
 * comparison grid, synchronised window/level and scrolling, the metrics panel against the API,
 * and the DICOM export. With SCORERECON_SCREENSHOTS=DIR the main screens are saved there
 * (docs/screenshots holds the committed ones).
 */
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePhantom } from "../../phantoms/index.js";
import { makeVolume } from "../../src/image/volume.js";
import { writeDicomSeries } from "../../src/io/dicom-write.js";
import { unzip } from "../helpers.js";
import { readVolume } from "../../src/io/index.js";
import { createServer, listen, type ScoreReconServer } from "../../server/app.js";

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
  const s = createServer({ dataDir: join(root, `data-${servers.length}`), workers: 2, token });
  await s.ready;
  const http = await listen(s, 0, "127.0.0.1");
  servers.push({ s, http });
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

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
    const data = new Float32Array(3 * N * N);
    for (let k = 0; k < 3; k++) data.set(generatePhantom("brain", N, 700 + k).data, k * N * N);
    const files = await writeDicomSeries(
      join(root, "series"),
      makeVolume(3, N, N, data, { modality: "MR", spacing: [1, 1, 2] }),
      { description: "phantom", derivation: "e2e" },
    );
    const page = await newPage();
    await page.goto(url);
    await page.setInputFiles("#file-input", files);
    await page.waitForSelector("#study-list li[data-series]");
    await page.waitForSelector("#mask-preview");
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
    const spreads = await page.$$eval(".cell canvas", (canvases) =>
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

/** Engine choice: auto falls back to tfjs with one line when ONNX Runtime is missing or broken. */
import { afterEach, describe, expect, it, vi } from "vitest";

type EngineModule = typeof import("../../src/prior/engine.js");

/** A fresh engine module (nothing chosen yet), with ONNX Runtime replaced as `mock` says. */
async function freshEngine(mock?: "missing" | "broken"): Promise<EngineModule> {
  vi.resetModules();
  if (mock === "missing")
    vi.doMock("onnxruntime-node", () => {
      throw new Error("Cannot find module 'onnxruntime-node'");
    });
  if (mock === "broken")
    vi.doMock("onnxruntime-node/dist/binding.js", () => {
      class InferenceSession {
        loadModel() {
          throw new Error("libonnxruntime.so.1: cannot open shared object file");
        }
      }
      return { default: { binding: { InferenceSession }, initOrt: () => {} } };
    });
  return import("../../src/prior/engine.js");
}

afterEach(() => {
  vi.doUnmock("onnxruntime-node");
  vi.doUnmock("onnxruntime-node/dist/binding.js");
  delete process.env.SCORERECON_ENGINE;
});

describe("inference engine choice", () => {
  it("auto is ONNX Runtime when it loads, named in one line, and workers started later inherit it", async () => {
    const { initEngine } = await freshEngine();
    const lines: string[] = [];
    expect(await initEngine("auto", (l) => lines.push(l))).toBe("onnx");
    expect(lines).toEqual([
      expect.stringMatching(
        /^scorerecon: inference engine onnx \(ONNX Runtime 1\.\d+\.\d+, cpu, \d+ threads? per evaluation\)$/,
      ),
    ]);
    expect(process.env.SCORERECON_ENGINE).toBe("onnx");
    // Chosen once: a second call neither probes again nor prints.
    expect(await initEngine("tfjs", (l) => lines.push(l))).toBe("onnx");
    expect(lines).toHaveLength(1);
  });

  it.each(["missing", "broken"] as const)(
    "ONNX Runtime %s: auto falls back to tfjs with one line; onnx is a clear error",
    async (mock) => {
      let engine = await freshEngine(mock);
      const lines: string[] = [];
      expect(await engine.initEngine("auto", (l) => lines.push(l))).toBe("tfjs");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^scorerecon: ONNX Runtime is not available \(.+\); inference engine tfjs \(TensorFlow\.js \w+\)$/,
      );
      // (vitest words a module that fails to load its own way; the native library's error is passed on.)
      if (mock === "broken") expect(lines[0]).toContain("cannot open shared object file");
      engine = await freshEngine(mock);
      await expect(engine.initEngine("onnx")).rejects.toMatchObject({
        message: expect.stringMatching(
          /^ONNX Runtime is not available on this machine \(.+\); use --engine tfjs$/,
        ),
        field: "--engine",
      });
    },
  );

  it("an unknown engine is a clear error naming the choices", async () => {
    const { initEngine } = await freshEngine();
    await expect(initEngine("gpu")).rejects.toThrow("engine must be one of auto, onnx, tfjs, got 'gpu'");
  });
});

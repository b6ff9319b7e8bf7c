/** Method requests: names, parameters and their per-modality and per-acquisition defaults. */
import { describe, expect, it } from "vitest";
import type { Acquisition } from "../../src/recon/acquisition.js";
import { paramSchema } from "../../src/recon/method-spec.js";
import { METHODS, methodDefaults, methodRequest, parseMethods } from "../../src/recon/methods.js";

describe("method requests", () => {
  it("score takes the defaults tuned for each modality; given values win", () => {
    expect(parseMethods("score", "mri")[0].params).toMatchObject({
      steps: 34,
      samples: 2,
      eta: 1,
      sigmaStart: 1,
      start: "tv",
      tvLambda: 0.005,
      tvIterations: 200,
    });
    expect(parseMethods("score", "ct")[0].params).toMatchObject({
      steps: 40,
      samples: 1,
      eta: 1,
      sigmaStart: 0.25,
      start: "tv",
      tvLambda: 0.001,
      tvIterations: 60,
    });
    expect(parseMethods("dds:tvIterations=50", "ct")[0].params).toMatchObject({ tvIterations: 50 });
    expect(parseMethods("score:samples=1:steps=20", "ct")[0].params).toMatchObject({ steps: 20, samples: 1 });
    expect(methodRequest("tv", { lambda: 0.005 }, "mri").params).toEqual({ lambda: 0.005, iterations: 300 });
  });

  it("made for an acquisition, score takes the defaults of its kind: sparse-view CT runs more steps", () => {
    const ct = (views: number): Acquisition => ({
      modality: "ct",
      size: 256,
      views,
      detectors: 363,
      noise: { kind: "none" },
    });
    for (const name of ["score", "dds"]) {
      expect(parseMethods(name, ct(23))[0].params).toMatchObject({
        steps: 60,
        cg: 5,
        samples: 1,
        tvIterations: 60,
      });
      expect(parseMethods(name, ct(32))[0].params).toMatchObject({ steps: 60 });
      expect(parseMethods(name, ct(33))[0].params).toMatchObject({ steps: 40 });
      expect(parseMethods(name, ct(60))[0].params).toEqual(parseMethods(name, "ct")[0].params);
    }
    expect(parseMethods("score:steps=30", ct(23))[0].params).toMatchObject({ steps: 30, cg: 5 });
    expect(methodRequest("score", { cg: 3 }, ct(23), "methods[0]", false, true).params).toMatchObject({
      steps: 60,
      cg: 3,
    });
    expect(methodRequest("score", { steps: 7 }, ct(23)).params).toMatchObject({ steps: 7 });
    const mri: Acquisition = {
      modality: "mri",
      rows: 256,
      cols: 256,
      mask: { kind: "random", acceleration: 8, centerFraction: 0.04, seed: 0 },
      noiseSigma: 0,
    };
    expect(parseMethods("score", mri)[0].params).toEqual(parseMethods("score", "mri")[0].params);
  });

  it("refuses unknown methods, parameters, bad values and methods of the other modality, naming the field", () => {
    expect(() => parseMethods("nope", "mri")).toThrow(/unknown method 'nope'/);
    expect(() => parseMethods("tv:bogus=1", "mri")).toThrow(/has no parameter 'bogus'/);
    expect(() => parseMethods("tv:lambda=-1", "mri")).toThrow(
      /lambda must be a number in \[0, 1000\], got '-1'/,
    );
    expect(() => parseMethods("tv:lambda", "mri")).toThrow(/must look like key=value/);
    expect(() => parseMethods("fbp", "mri")).toThrow(/does not apply to MRI/);
    expect(() => parseMethods("score:start=fbp", "mri")).toThrow(/start must be one of tv, ls/);
    expect(() => methodRequest("fbp", { filter: "box" }, "ct", "methods[2]")).toThrow(
      expect.objectContaining({ field: "methods[2].filter" }),
    );
  });

  it("every parameter has a type and a range; counts are integers; out of range names the field", () => {
    for (const [text, field, message] of [
      ["score:steps=1e9", "method.steps", /steps must be an integer in \[1, 2000\], got '1e9'/],
      ["score:samples=1e6", "method.samples", /samples must be an integer in \[1, 64\]/],
      ["tv:iterations=1e12", "method.iterations", /iterations must be an integer in \[1, 100000\]/],
      ["score:tvIterations=0", "method.tvIterations", /tvIterations must be an integer in \[1, 100000\]/],
      ["score:cg=1e9", "method.cg", /cg must be an integer in \[0, 100\]/],
      ["score:steps=2.5", "method.steps", /must be an integer/],
      ["score:samples=0", "method.samples", /must be an integer in \[1, 64\], got '0'/],
      ["score:steps=", "method.steps", /got ''/],
      ["score:steps=abc", "method.steps", /got 'abc'/],
    ] as const) {
      expect(() => parseMethods(text, "mri"), text).toThrow(expect.objectContaining({ field }));
      expect(() => parseMethods(text, "mri"), text).toThrow(message);
    }
    // A JSON job gives numbers as numbers; the command line's text is converted first.
    expect(() => methodRequest("score", { steps: "75" }, "mri", "methods[0]")).toThrow(
      expect.objectContaining({ field: "methods[0].steps" }),
    );
    expect(parseMethods("score:steps=1:seed=2147483647", "mri")[0].params).toMatchObject({
      steps: 1,
      seed: 2 ** 31 - 1,
    });
  });

  it("every declared, modality and acquisition default is of its type and in its range", () => {
    for (const m of METHODS) {
      for (const modality of m.modalities) {
        const d = methodDefaults(m, modality);
        expect(Object.keys(d).sort()).toEqual(Object.keys(m.params).sort());
        for (const [key, spec] of Object.entries(m.params))
          expect(paramSchema(spec).safeParse(d[key]).success, `${m.name} ${modality} ${key}`).toBe(true);
      }
      for (const d of m.acquisitionDefaults ?? [])
        for (const [key, value] of Object.entries(d.params))
          expect(paramSchema(m.params[key]).safeParse(value).success, `${m.name} ${d.label} ${key}`).toBe(
            true,
          );
    }
  });
});

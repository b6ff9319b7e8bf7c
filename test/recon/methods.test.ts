/** Method requests: names, parameters and their per-modality defaults. */
import { describe, expect, it } from "vitest";
import { methodRequest, parseMethods } from "../../src/recon/methods.js";

describe("method requests", () => {
  it("score takes the defaults tuned for each modality; given values win", () => {
    expect(parseMethods("score", "mri")[0].params).toMatchObject({
      steps: 75,
      samples: 2,
      eta: 1,
      sigmaStart: 1,
      start: "tv",
      tvLambda: 0.005,
    });
    expect(parseMethods("score", "ct")[0].params).toMatchObject({
      steps: 60,
      samples: 2,
      eta: 1,
      sigmaStart: 0.25,
      start: "tv",
      tvLambda: 0.001,
    });
    expect(parseMethods("score:samples=1:steps=20", "ct")[0].params).toMatchObject({ steps: 20, samples: 1 });
    expect(methodRequest("tv", { lambda: 0.005 }, "mri").params).toEqual({ lambda: 0.005, iterations: 300 });
  });

  it("refuses unknown methods, parameters, bad values and methods of the other modality, naming the field", () => {
    expect(() => parseMethods("nope", "mri")).toThrow(/unknown method 'nope'/);
    expect(() => parseMethods("tv:bogus=1", "mri")).toThrow(/has no parameter 'bogus'/);
    expect(() => parseMethods("tv:lambda=-1", "mri")).toThrow(/lambda must be a non-negative number/);
    expect(() => parseMethods("tv:lambda", "mri")).toThrow(/must look like key=value/);
    expect(() => parseMethods("fbp", "mri")).toThrow(/does not apply to MRI/);
    expect(() => parseMethods("score:start=fbp", "mri")).toThrow(/start must be one of tv, ls/);
    expect(() => methodRequest("fbp", { filter: "box" }, "ct", "methods[2]")).toThrow(
      expect.objectContaining({ field: "methods[2].filter" }),
    );
  });
});

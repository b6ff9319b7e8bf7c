/**
 * Adam (Kingma & Ba 2015) over one flat float32 array of parameters, with tf.train.adam's
 * arithmetic (the bias-corrected moments, epsilon added to the root of the second one) and its
 * state's layout in train-state.* (`iter`, then every variable's `NAME/m`, then every `NAME/v`), so
 * training states written by either resume with the other. Plain loops: tf.train.adam costs about
 * ten kernel calls per parameter tensor per step, which on the main thread of data-parallel
 * training is time the workers wait (tens of ms for the CT network's 134 tensors, ~1 ms here).
 */
import { UserError } from "../errors.js";
import { tf } from "./backend.js";

export class FlatAdam {
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Steps taken. */
  iterations = 0;

  constructor(
    readonly size: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /** One step on `params` (in place) with the gradient `grad` at learning rate `lr`. */
  step(params: Float32Array, grad: Float32Array, lr: number): void {
    const { m, v, beta1: b1, beta2: b2, epsilon } = this;
    this.iterations++;
    const c1 = 1 - b1 ** this.iterations,
      c2 = 1 - b2 ** this.iterations;
    for (let i = 0; i < params.length; i++) {
      const g = grad[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + epsilon);
    }
  }

  /** The state as tf.train.adam's getWeights names it, for `vars` laid out flat in this order. */
  named(vars: tf.Variable[]): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = { iter: tf.scalar(this.iterations, "int32") };
    for (const [suffix, moments] of [
      ["m", this.m],
      ["v", this.v],
    ] as const) {
      let offset = 0;
      for (const x of vars) {
        out[`${x.name}/${suffix}`] = tf.tensor(moments.slice(offset, offset + x.size), x.shape);
        offset += x.size;
      }
    }
    return out;
  }

  /** Restores `named`'s layout (by position, as tf.train.adam's setWeights does); `source` names it in errors. */
  load(named: tf.NamedTensorMap, vars: tf.Variable[], source: string): void {
    const { iter, ...rest } = named;
    const moments = Object.values(rest);
    const fail = (why: string) =>
      new UserError(
        `cannot resume from ${source}: its optimizer state does not match the network (${why})`,
        "bad_model",
        "--resume",
      );
    if (!iter) throw fail("no iteration count");
    if (moments.length !== 2 * vars.length)
      throw fail(`${moments.length} moment tensors, the network needs ${2 * vars.length}`);
    this.iterations = iter.dataSync()[0];
    let offset = 0;
    vars.forEach((x, k) => {
      for (const [target, t] of [
        [this.m, moments[k]],
        [this.v, moments[vars.length + k]],
      ] as const) {
        if (t.size !== x.size) throw fail(`tensor ${k} has ${t.size} values, expected ${x.size}`);
        target.set(t.dataSync(), offset);
      }
      offset += x.size;
    });
  }
}

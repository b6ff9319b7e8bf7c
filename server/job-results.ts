/**
 * Reading a job's results: one slice of a method's volume or of its `-std` map, in output units,
 * from the result volume of a done job or else from the job's finished slices (the slice store),
 * whatever the job's state (running, cancelled, failed).
 */
import { UserError } from "../src/errors.js";
import { sliceOf, type Volume } from "../src/image/volume.js";
import type { MethodRequest } from "../src/recon/methods.js";
import { inHounsfieldUnits } from "../src/recon/reconstruct.js";
import { fromOperatorUnits, toOperatorUnits } from "../src/recon/slice-task.js";
import type { JobRecord } from "./job-record.js";
import { withModelDir } from "./models.js";
import type { Storage } from "./storage.js";

/**
 * A planned method as the job runs it, and as its finished slices are keyed in the job's slice
 * store: the prior's API name (params.model) becomes its folder (server/models.ts).
 */
export const runRequest = (storage: Storage, m: MethodRequest): MethodRequest =>
  withModelDir(m, storage.root);

export class JobResults {
  /**
   * Per job whose finished slices are read (running, cancelled, failed): whether its CT values are
   * in HU (output units differ from operator units). Dropped when the job is done or its outputs go.
   */
  private readonly huOf = new Map<string, boolean>();

  constructor(private readonly storage: Storage) {}

  /** The job's results are read from its result volumes now, or are gone. */
  forget(jobId: string): void {
    this.huOf.delete(jobId);
  }

  /** One finished slice of a method's result or its `-std` map (output units), `slice` in the series. */
  slice(job: JobRecord, method: string, slice: number): Float32Array | undefined {
    const [a, b] = job.plan.slices;
    if (slice < a || slice >= b) return undefined;
    if (job.state === "done") {
      const v = this.storage.result(job.id, method);
      const n = v ? v.rows * v.cols : 0;
      return v?.data.subarray((slice - a) * n, (slice - a + 1) * n);
    }
    const std = method.endsWith("-std");
    const planned = job.plan.methods.find((m) => m.name === (std ? method.slice(0, -4) : method));
    const series = this.storage.volume(job.study, job.plan.seriesId);
    if (!planned || !series) return undefined;
    let request: MethodRequest;
    try {
      request = runRequest(this.storage, planned);
    } catch (e) {
      // Its model was removed: the slices keyed on its folder cannot be found.
      if (e instanceof UserError) return undefined;
      throw e;
    }
    const { acquisition } = job.plan;
    const hu = this.inHu(job, series);
    const k = slice - a;
    const x = toOperatorUnits(sliceOf(series, slice).data, acquisition, hu);
    const input = { kind: "simulated" as const, x, seed: (job.plan.spec.seed ?? 0) + k };
    const out = this.storage.sliceStore(job.id).get({ acquisition, method: request, slice: k, input });
    if (!out) return undefined;
    if (!std) return fromOperatorUnits(out.image, hu);
    return out.std && (hu ? out.std.map((v) => 1000 * v) : out.std);
  }

  /** As the pipeline decides it for the job's slices (src/recon/reconstruct.ts). */
  private inHu(job: JobRecord, series: Volume): boolean {
    let hu = this.huOf.get(job.id);
    if (hu === undefined) {
      const [a, b] = job.plan.slices;
      const n = series.rows * series.cols;
      const own = { ...series, slices: b - a, data: series.data.subarray(a * n, b * n) };
      hu = inHounsfieldUnits(own, job.plan.acquisition);
      this.huOf.set(job.id, hu);
    }
    return hu;
  }
}

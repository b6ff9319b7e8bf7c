/**
 * The server's API, seen from the browser. The bearer token (when the server wants one) is kept in
 * sessionStorage: entered once per tab, gone when the tab closes, never in a URL.
 */
export interface Series {
  id: string;
  description: string;
  modality: "MR" | "CT" | "OT";
  units: string;
  rows: number;
  cols: number;
  slices: number;
  spacing: number[];
  window: { center: number; width: number };
}
export interface Study {
  id: string;
  created: string;
  source: string;
  files: number;
  series: Series[];
}
export interface SliceMetrics {
  slice: number;
  psnr: number;
  ssim: number;
  nmse: number;
  seconds: number;
}
export interface Metrics {
  perSlice: Record<string, SliceMetrics[]>;
  mean: Record<string, { psnr: number; ssim: number; nmse: number; seconds: number; slices: number }>;
}
export interface Job {
  id: string;
  created: string;
  study: string;
  series: string;
  state: "queued" | "running" | "done" | "failed" | "cancelled";
  methods: { name: string; params: Record<string, unknown> }[];
  slices: [number, number];
  progress: number;
  perMethod: Record<
    string,
    { done: number; total: number; current?: { slice: number; done: number; total: number } }
  >;
  metrics: Metrics;
  description: string;
  modality: "mri" | "ct";
  error?: { code: string; message: string };
}
export interface JobSummary {
  id: string;
  study: string;
  series: string;
  state: Job["state"];
  methods: string[];
  slices: [number, number];
  progress: number;
  error?: { code: string; message: string };
}
export interface Model {
  name: string;
  shipped: boolean;
  prior: { modality: "mri" | "ct"; steps: number; data: string };
}
/** A prior's training (GET /api/models/:name). */
export interface Training {
  name: string;
  state: "queued" | "training" | "ready" | "failed" | "cancelled";
  step: number;
  steps: number;
  loss: [number, number][];
  stepsPerSecond: number | null;
  etaSeconds: number | null;
  grid: { step: number; url: string } | null;
  error?: { code: string; message: string };
}
/** One event of a training's stream (server/training-record.ts TrainingEvent). */
export interface TrainingEventData {
  step?: number;
  steps?: number;
  loss?: number;
  stepsPerSecond?: number;
  etaSeconds?: number;
  state?: Training["state"];
  error?: Training["error"];
}
/** A job field as the API's job schema declares it (GET /api/defaults). */
export interface Field {
  type?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: string[];
}
/** The job spec's `mri` and `ct` fields with their defaults and ranges. */
export interface AcquisitionFields {
  mri: Record<string, Field>;
  ct: Record<string, Field>;
}
export interface SlicePixels {
  rows: number;
  cols: number;
  dtype: "int16";
  slope: number;
  intercept: number;
  min: number;
  max: number;
  window: { center: number; width: number };
  spacing: number[];
  pixels: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "scorerecon-token";
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set: (t: string) => sessionStorage.setItem(TOKEN_KEY, t),
};

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token.get();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let field: string | undefined;
  try {
    const body = await res.json();
    message = body.error?.message ?? message;
    field = body.error?.field;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, message, field);
}

export async function get<T>(path: string): Promise<T> {
  const res = await fetch(`/api${path}`, { headers: headers() });
  if (!res.ok) throw await failure(res);
  return res.json() as Promise<T>;
}

async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`/api${path}`, {
    method,
    headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

export const api = {
  studies: () => get<{ studies: Study[] }>("/studies").then((r) => r.studies),
  study: (id: string) => get<Study>(`/studies/${id}`),
  deleteStudy: (id: string) => send<void>("DELETE", `/studies/${id}`),
  jobs: () => get<{ jobs: JobSummary[] }>("/jobs").then((r) => r.jobs),
  job: (id: string) => get<Job>(`/jobs/${id}`),
  metrics: (id: string) => get<Metrics>(`/jobs/${id}/metrics`),
  models: () => get<{ models: Model[] }>("/models").then((r) => r.models),
  defaults: () => get<AcquisitionFields>("/defaults"),
  createJob: (spec: unknown) => send<Job>("POST", "/jobs", spec),
  cancelJob: (id: string) => send<unknown>("DELETE", `/jobs/${id}`),
  createModel: (spec: unknown) => send<Training>("POST", "/models", spec),
  model: (name: string) => get<Training>(`/models/${encodeURIComponent(name)}`),
  deleteModel: (name: string) => send<unknown>("DELETE", `/models/${encodeURIComponent(name)}`),
};

/** An API image (with the token) as a data: URL (the page's CSP allows images from data:, not blob:). */
export async function imageUrl(path: string): Promise<string> {
  const res = await fetch(`/api${path}`, { headers: headers() });
  if (!res.ok) throw await failure(res);
  const blob = await res.blob();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("the image could not be read"));
    reader.readAsDataURL(blob);
  });
}

/** Uploads files with progress (XMLHttpRequest reports upload progress; fetch does not). */
export function uploadStudy(
  files: File[],
  onProgress: (fraction: number) => void,
  modality?: string,
): Promise<Study> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    if (modality) form.append("modality", modality);
    for (const f of files) form.append("files", f, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/studies");
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body: { error?: { message: string; field?: string } } & Partial<Study> = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // keep {}
      }
      if (xhr.status === 201) resolve(body as Study);
      else
        reject(
          new ApiError(xhr.status, body.error?.message ?? `upload failed (${xhr.status})`, body.error?.field),
        );
    };
    xhr.onerror = () => reject(new ApiError(0, "the upload could not reach the server"));
    xhr.send(form);
  });
}

/** One Server-Sent Event's data (see server/jobs.ts JobEvent); a `snapshot` event carries the job. */
export interface JobEventData {
  method: string;
  slice: number;
  done: number;
  total: number;
  state: Job["state"];
  error?: Job["error"];
}

/** Follows a job's Server-Sent Events; returns a function that stops following. */
export const followJob = (
  id: string,
  onEvent: (type: string, data: JobEventData) => void,
  onError: (e: Error) => void,
): (() => void) => followEvents(`/jobs/${id}/events`, onEvent, onError);

/** Follows a training's Server-Sent Events; returns a function that stops following. */
export const followTraining = (
  name: string,
  onEvent: (type: string, data: TrainingEventData) => void,
  onError: (e: Error) => void,
): (() => void) => followEvents(`/models/${encodeURIComponent(name)}/events`, onEvent, onError);

/**
 * Follows an API event stream with fetch (EventSource cannot send the bearer token).
 * Returns a function that stops following.
 */
function followEvents<T>(
  path: string,
  onEvent: (type: string, data: T) => void,
  onError: (e: Error) => void,
): () => void {
  const controller = new AbortController();
  (async () => {
    const res = await fetch(`/api${path}`, { headers: headers(), signal: controller.signal });
    if (!res.ok || !res.body) throw await failure(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        // An event may open another job or training, which stops following this one: drop what is left.
        if (controller.signal.aborted) return;
        if (type && data) onEvent(type, JSON.parse(data));
      }
    }
  })().catch((e: Error) => {
    if (e.name !== "AbortError") onError(e);
  });
  return () => controller.abort();
}

/** Downloads an API file (with the token) and saves it under `name`. */
export async function download(path: string, name: string): Promise<void> {
  const res = await fetch(`/api${path}`, { headers: headers() });
  if (!res.ok) throw await failure(res);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

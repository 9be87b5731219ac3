// GAIA's REST client: the types generated from /openapi.json (schema.d.ts, by
// openapi-typescript in `make generate`), openapi-fetch for every unary route,
// and what a generated client cannot do by itself: read the NDJSON streams and
// retry a metrics batch safely.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";
/** Every schema of the API, by name: `Schemas["Task"]`, `Schemas["UsabilityEvent"]`. */
export type Schemas = components["schemas"];
/** The body of every error, and the last line of a stream that failed. */
export type ErrorResponse = Schemas["ErrorResponse"];

/** A failed call: the gRPC code and message the API answered with. */
export class GaiaError extends Error {
  constructor(
    /** The gRPC status code, such as 3 (INVALID_ARGUMENT) or 16 (UNAUTHENTICATED). */
    readonly code: number,
    message: string,
    /** The HTTP status; 200 when a stream failed after its first result. */
    readonly httpStatus: number,
    readonly details: Schemas["Any"][] = [],
  ) {
    super(message);
    this.name = "GaiaError";
  }
}

export interface GaiaClientOptions {
  /** The gateway, such as "http://127.0.0.1:8080". */
  baseUrl: string;
  /** A bearer credential (`gaia auth issue`); agent sessions use their session token in requests instead. */
  token?: string;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** Server-streaming GET routes and the result type of each line. */
export type StreamPath = {
  [P in keyof paths]: paths[P] extends { get: { responses: { 200: { content: { "application/x-ndjson": unknown } } } } } ? P : never;
}[keyof paths];
type StreamLine<P extends StreamPath> = paths[P]["get"]["responses"][200]["content"]["application/x-ndjson"];
/** What each line of stream P carries. */
export type StreamResult<P extends StreamPath> = StreamLine<P> extends infer L ? (L extends { result: infer R } ? R : never) : never;
type StreamParams<P extends StreamPath> = paths[P]["get"]["parameters"];

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** First backoff in milliseconds, doubled each time, with jitter (default 200). */
  baseDelayMs?: number;
  signal?: AbortSignal;
}

export interface GaiaClient {
  /** Typed calls to every unary route: `api.GET("/v1/tasks/{task_id}", { params: { path: { task_id } } })`. */
  api: Client<paths>;
  /**
   * Follows a streaming route, yielding each line's result as it arrives; a
   * failed stream throws GaiaError (an error before the first result too).
   * Resume after a disconnect with the last id seen (after_index, after_id,
   * after_alert_id). Abort with `signal`.
   */
  follow<P extends StreamPath>(path: P, params: StreamParams<P>, signal?: AbortSignal): AsyncGenerator<StreamResult<P>>;
  /**
   * Posts a batch of usability events, retrying on network errors, 429 and
   * 5xx with the same body: events without an event_id get one before the
   * first attempt, so a retry of a batch that was in fact stored counts as
   * duplicates instead of storing twice.
   */
  recordMetrics(events: Schemas["UsabilityEvent"][], options?: RetryOptions): Promise<Schemas["RecordMetricsResult"]>;
}

export function createGaiaClient(options: GaiaClientOptions): GaiaClient {
  const headers: Record<string, string> = {};
  if (options.token) headers["Authorization"] = `Bearer ${options.token}`;
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const base = options.baseUrl.replace(/\/+$/, "");
  const api = createClient<paths>({ baseUrl: base, headers, fetch: doFetch });

  async function* follow<P extends StreamPath>(path: P, params: StreamParams<P>, signal?: AbortSignal): AsyncGenerator<StreamResult<P>> {
    const url = base + expandPath(path, (params as { path?: Record<string, unknown> }).path) + query((params as { query?: Record<string, unknown> }).query);
    const init: RequestInit = { headers: { ...headers, Accept: "application/x-ndjson" } };
    if (signal) init.signal = signal;
    const response = await doFetch(url, init);
    if (!response.ok) throw await errorOf(response);
    if (!response.body) return;
    for await (const line of readNDJSON(response.body)) {
      if (isError(line)) throw new GaiaError(line.error.code, line.error.message, response.status, line.error.details);
      yield (line as { result: StreamResult<P> }).result;
    }
  }

  async function recordMetrics(events: Schemas["UsabilityEvent"][], opts: RetryOptions = {}): Promise<Schemas["RecordMetricsResult"]> {
    const body = { events: events.map((e) => (e.event_id ? e : { ...e, event_id: crypto.randomUUID() })) };
    const attempts = opts.attempts ?? 5;
    let delay = opts.baseDelayMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs = 0;
      try {
        const fetchOpts: { body: typeof body; signal?: AbortSignal } = { body };
        if (opts.signal) fetchOpts.signal = opts.signal;
        const { data, error, response } = await api.POST("/v1/metrics", fetchOpts);
        if (data) return data;
        const err = new GaiaError(error.error.code, error.error.message, response.status, error.error.details);
        if (!retryable(response.status) || attempt >= attempts) throw err;
        retryAfterMs = Number(response.headers.get("Retry-After") ?? 0) * 1000;
      } catch (err) {
        // A GaiaError is the API's answer; anything else is the network's.
        if (err instanceof GaiaError || attempt >= attempts || opts.signal?.aborted) throw err;
      }
      await sleep(Math.max(retryAfterMs, delay / 2 + Math.random() * delay), opts.signal);
      delay *= 2;
    }
  }

  return { api, follow, recordMetrics };
}

/** Reads a newline-delimited JSON body line by line (works with browser and Node fetch). */
export async function* readNDJSON(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield JSON.parse(line);
      }
    }
    if (buffered.trim()) yield JSON.parse(buffered);
  } finally {
    reader.releaseLock();
  }
}

function isError(line: unknown): line is ErrorResponse {
  return typeof line === "object" && line !== null && "error" in line;
}

async function errorOf(response: Response): Promise<GaiaError> {
  try {
    const body: unknown = await response.json();
    if (isError(body)) return new GaiaError(body.error.code, body.error.message, response.status, body.error.details);
  } catch {
    // not JSON: fall through
  }
  return new GaiaError(2, `${response.status} ${response.statusText}`, response.status);
}

function retryable(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

function expandPath(template: string, params: Record<string, unknown> | undefined): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params?.[name];
    if (v === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(v));
  });
}

function query(params: Record<string, unknown> | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

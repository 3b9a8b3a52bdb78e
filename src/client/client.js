// @ts-check
/**
 * `call(service, path, options)`: an HTTP/1.1 request to the local nuncio egress listener with
 * `Host: <service>` (how the control plane's egress routes: one virtual host per upstream), the timeout and
 * retry policy as Envoy's x-envoy-* request headers, and the current request's tracing headers. Answers a
 * fetch `Response`.
 *
 * It uses node:http rather than fetch: fetch (Deno's and Node's undici alike) drops a `Host` header and sends
 * the URL's authority instead, so a request could not name its service.
 */
import http from "node:http";
import { currentHeaders } from "./context.js";

/** Where the egress listener is when neither an option nor NUNCIO_EGRESS says. */
export const DEFAULT_EGRESS = "127.0.0.1:9001";

/** Methods retried by default: safe to send twice (RFC 9110 idempotent methods). */
const IDEMPOTENT = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "PUT",
  "DELETE",
  "TRACE",
]);

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * @typedef {object} CallPolicy
 * @property {number | null} [timeoutMs] x-envoy-upstream-rq-timeout-ms (default 15000; null: the route's)
 * @property {number | null} [perTryTimeoutMs] x-envoy-upstream-rq-per-try-timeout-ms (default: not sent)
 * @property {number | null} [retries] x-envoy-max-retries (default 2 for idempotent methods, 0 for others;
 *   null: the route's)
 * @property {string | null} [retryOn] x-envoy-retry-on, sent when retries > 0
 *   (default "5xx,connect-failure,refused-stream")
 */

/**
 * @typedef {CallPolicy & {
 *   method?: string,
 *   headers?: HeadersInit,
 *   body?: string | Uint8Array | null,
 *   json?: unknown,
 *   signal?: AbortSignal,
 * }} CallOptions
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [egress] host:port of the egress listener (default NUNCIO_EGRESS, then 127.0.0.1:9001)
 * @property {CallPolicy} [defaults] the policy every call starts from
 * @property {boolean} [keepAlive] reuse connections to the egress listener (default true)
 */

/** @type {Required<CallPolicy>} */
const BUILTIN_POLICY = Object.freeze({
  timeoutMs: 15000,
  perTryTimeoutMs: null,
  retries: 2,
  retryOn: "5xx,connect-failure,refused-stream",
});

/**
 * An environment variable, behind feature checks: Deno.env (which throws without --allow-env: then unset),
 * else Node's process.env.
 * @param {string} name
 * @returns {string | undefined}
 */
function envVar(name) {
  /** @type {any} */
  const g = globalThis;
  try {
    if (g.Deno?.env?.get) return g.Deno.env.get(name) ?? undefined;
    return g.process?.env?.[name];
  } catch {
    return undefined;
  }
}

/**
 * Parses `host:port` (or `[v6]:port`, or a bare port) of the egress listener; throws on anything else.
 * @param {string} text
 * @returns {{ host: string, port: number }}
 */
export function parseEgress(text) {
  const s = text.trim();
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(s) ??
    /^()()(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new Error(
      `Egress address must be HOST:PORT (e.g. 127.0.0.1:9001), not "${text}"`,
    );
  }
  return { host: m[1] || m[2] || "127.0.0.1", port };
}

/**
 * The egress address a client uses: the option, else NUNCIO_EGRESS, else 127.0.0.1:9001.
 * @param {string} [option]
 * @returns {{ host: string, port: number }}
 */
export function egressAddress(option) {
  return parseEgress(option ?? envVar("NUNCIO_EGRESS") ?? DEFAULT_EGRESS);
}

/**
 * The request headers of one call, in order: the caller's, the propagated tracing headers (the caller's win),
 * the x-envoy-* policy headers, `host`. Pure; exported for tests.
 * @param {string} service
 * @param {string} method upper case
 * @param {CallPolicy} policy defaults, then options
 * @param {HeadersInit | undefined} extra
 * @param {ReadonlyArray<readonly [string, string]>} propagated
 * @returns {Headers}
 */
export function requestHeaders(service, method, policy, extra, propagated) {
  const h = new Headers(extra);
  for (const [n, v] of propagated) if (!h.has(n)) h.set(n, v);
  const p = { ...BUILTIN_POLICY, ...policy };
  const retries = policy.retries === undefined ? (IDEMPOTENT.has(method) ? p.retries : 0) : p.retries;
  if (p.timeoutMs !== null) {
    h.set("x-envoy-upstream-rq-timeout-ms", String(nonNegative(p.timeoutMs)));
  }
  if (p.perTryTimeoutMs !== null) {
    h.set(
      "x-envoy-upstream-rq-per-try-timeout-ms",
      String(nonNegative(p.perTryTimeoutMs)),
    );
  }
  if (retries !== null) {
    h.set("x-envoy-max-retries", String(nonNegative(retries)));
    if (retries > 0 && p.retryOn) h.set("x-envoy-retry-on", p.retryOn);
  }
  h.set("host", service);
  return h;
}

/** @param {number} n */
function nonNegative(n) {
  if (!Number.isFinite(n) || n < 0) {
    throw new Error(`Expected a non-negative number, not ${n}`);
  }
  return Math.floor(n);
}

/**
 * A client bound to one egress listener, with its own connection pool; `close()` ends its idle connections.
 */
export class NuncioClient {
  #egress;
  #defaults;
  #agent;

  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    this.#egress = egressAddress(options.egress);
    this.#defaults = { ...options.defaults };
    this.#agent = new http.Agent({ keepAlive: options.keepAlive !== false });
  }

  /** The egress listener this client sends to. */
  get egress() {
    return { ...this.#egress };
  }

  /**
   * Calls `path` (with its query) of `service` through the egress listener; resolves with the response once
   * its headers arrive (the body streams), rejects when the listener cannot be reached or `signal` aborts.
   * @param {string} service
   * @param {string} path
   * @param {CallOptions} [options]
   * @returns {Promise<Response>}
   */
  call(service, path, options = {}) {
    const method = (options.method ?? (options.json !== undefined ? "POST" : "GET"))
      .toUpperCase();
    const policy = { ...this.#defaults };
    for (
      const k of /** @type {(keyof CallPolicy)[]} */ ([
        "timeoutMs",
        "perTryTimeoutMs",
        "retries",
        "retryOn",
      ])
    ) {
      if (options[k] !== undefined) /** @type {any} */ (policy)[k] = options[k];
    }
    const headers = requestHeaders(
      service,
      method,
      policy,
      options.headers,
      currentHeaders(),
    );
    /** @type {string | Uint8Array | null} */
    let body = options.body ?? null;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      if (!headers.has("content-type")) {
        headers.set("content-type", "application/json");
      }
    }
    if (body !== null) headers.set("content-length", String(byteLength(body)));
    const timeoutMs = policy.timeoutMs === undefined ? BUILTIN_POLICY.timeoutMs : policy.timeoutMs;
    return this.#send(
      method,
      path.startsWith("/") ? path : `/${path}`,
      headers,
      body,
      timeoutMs,
      options.signal,
    );
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {Headers} headers
   * @param {string | Uint8Array | null} body
   * @param {number | null} timeoutMs the proxy's deadline; the client gives up 1 s after it
   * @param {AbortSignal | undefined} signal
   * @returns {Promise<Response>}
   */
  #send(method, path, headers, body, timeoutMs, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      /** @type {Record<string, string>} */
      const flat = {};
      headers.forEach((v, k) => flat[k] = v);
      const req = http.request({
        host: this.#egress.host,
        port: this.#egress.port,
        method,
        path,
        headers: flat,
        agent: this.#agent,
      });
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      const onAbort = () => req.destroy(signal?.reason ?? new Error("Aborted"));
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== null && timeoutMs > 0) {
        timer = setTimeout(() => {
          req.destroy(
            new Error(
              `No answer from the egress listener ${timeoutMs + 1000} ms after the call`,
            ),
          );
        }, timeoutMs + 1000);
      }
      req.on("error", (err) => {
        done();
        reject(err);
      });
      req.on("response", (res) => {
        done();
        const status = res.statusCode ?? 502;
        const out = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          out.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        }
        if (NULL_BODY.has(status) || method === "HEAD") {
          res.resume();
          resolve(
            new Response(null, {
              status,
              statusText: res.statusMessage,
              headers: out,
            }),
          );
          return;
        }
        let finished = false;
        const stream = new ReadableStream({
          start(ctrl) {
            res.on("data", (chunk) => {
              if (finished) return;
              ctrl.enqueue(new Uint8Array(chunk));
              if ((ctrl.desiredSize ?? 1) <= 0) res.pause();
            });
            res.on("end", () => {
              if (!finished) ctrl.close();
              finished = true;
            });
            res.on("error", (err) => {
              if (!finished) ctrl.error(err);
              finished = true;
            });
          },
          pull() {
            res.resume();
          },
          cancel() {
            finished = true;
            res.destroy();
          },
        });
        resolve(
          new Response(stream, {
            status,
            statusText: res.statusMessage,
            headers: out,
          }),
        );
      });
      req.end(body ?? undefined);
    });
  }

  /** Closes the pooled connections to the egress listener; calls made afterwards open new ones. */
  close() {
    this.#agent.destroy();
  }
}

/** @param {string | Uint8Array} body */
function byteLength(body) {
  return typeof body === "string" ? new TextEncoder().encode(body).byteLength : body.byteLength;
}

/** @type {NuncioClient | undefined} */
let shared;

/**
 * `call()` on a client created on first use (egress from NUNCIO_EGRESS or 127.0.0.1:9001, built-in policy).
 * @param {string} service
 * @param {string} path
 * @param {CallOptions} [options]
 * @returns {Promise<Response>}
 */
export function call(service, path, options) {
  shared ??= new NuncioClient();
  return shared.call(service, path, options);
}

/** Closes the shared client's idle connections (tests, graceful shutdown); the next `call()` makes a new one. */
export function closeSharedClient() {
  shared?.close();
  shared = undefined;
}

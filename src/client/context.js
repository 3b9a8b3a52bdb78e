// @ts-check
/**
 * The incoming request's tracing headers, kept for the duration of its handler in an AsyncLocalStorage
 * (node:async_hooks, which Deno and Node both have), so that every `call()` made while handling it carries
 * the same x-request-id and trace context on to the next service.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The headers propagated from an incoming request to outgoing calls, lower case: Envoy's request id, the
 * Zipkin/B3 (multi and single header), W3C trace context, OpenTracing (LightStep) and client trace headers,
 * and x-envoy-force-trace.
 */
export const PROPAGATED_HEADERS = Object.freeze([
  "x-request-id",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
  "b3",
  "traceparent",
  "tracestate",
  "x-ot-span-context",
  "x-client-trace-id",
  "x-envoy-force-trace",
]);

/** @typedef {Headers | Record<string, string | string[] | undefined> | Iterable<[string, string]>} HeaderSource */
/** @typedef {Request | { headers: HeaderSource } | HeaderSource} IncomingSource */
/** @typedef {{ generateRequestId?: boolean }} WithIncomingOptions */

/** @type {AsyncLocalStorage<ReadonlyArray<readonly [string, string]>>} */
const storage = new AsyncLocalStorage();

/**
 * Reads one header from any of the shapes a server hands out: a fetch `Headers`, a Node
 * `IncomingMessage.headers` object (lower-case keys, arrays for repeated headers) or [name, value] pairs.
 * @param {HeaderSource} h
 * @param {string} name lower case
 * @returns {string | undefined}
 */
function headerOf(h, name) {
  if (typeof Headers !== "undefined" && h instanceof Headers) {
    return h.get(name) ?? undefined;
  }
  if (Symbol.iterator in h && typeof h !== "string") {
    const found = [];
    for (const [k, v] of /** @type {Iterable<[string, string]>} */ (h)) {
      if (k.toLowerCase() === name) found.push(v);
    }
    return found.length > 0 ? found.join(", ") : undefined;
  }
  const rec = /** @type {Record<string, string | string[] | undefined>} */ (h);
  let v = rec[name];
  if (v === undefined) {
    for (const k of Object.keys(rec)) {
      if (k.toLowerCase() === name) v = rec[k];
    }
  }
  if (Array.isArray(v)) return v.join(", ");
  return v;
}

/**
 * The headers object of `incoming` (a Request, anything with `.headers`, or the headers themselves).
 * @param {IncomingSource} incoming
 * @returns {HeaderSource}
 */
function headersOf(incoming) {
  if (typeof Request !== "undefined" && incoming instanceof Request) {
    return incoming.headers;
  }
  const maybe = /** @type {{ headers?: unknown }} */ (incoming);
  if (
    maybe.headers !== undefined && typeof maybe.headers === "object" &&
    maybe.headers !== null
  ) {
    return /** @type {HeaderSource} */ (maybe.headers);
  }
  return /** @type {HeaderSource} */ (incoming);
}

/**
 * Picks the propagated headers of `incoming` (see PROPAGATED_HEADERS), in that order; when
 * `generateRequestId` (default true) and it has no x-request-id, a new UUID is added so every call made
 * for this request shares one id. Pure: runs per incoming request, returns [name, value] pairs.
 * @param {IncomingSource} incoming
 * @param {WithIncomingOptions} [options]
 * @returns {Array<[string, string]>}
 */
export function pickPropagated(incoming, options = {}) {
  const h = headersOf(incoming);
  /** @type {Array<[string, string]>} */
  const out = [];
  for (const name of PROPAGATED_HEADERS) {
    const v = headerOf(h, name);
    if (v !== undefined && v !== "") out.push([name, v]);
  }
  if (
    options.generateRequestId !== false &&
    !out.some(([n]) => n === "x-request-id")
  ) {
    out.unshift(["x-request-id", crypto.randomUUID()]);
  }
  return out;
}

/**
 * Runs `fn` with the tracing headers of `incoming` as the current context: every `call()` made inside it,
 * across awaits, sends them on. Returns what `fn` returns.
 * @template T
 * @param {IncomingSource} incoming
 * @param {() => T} fn
 * @param {WithIncomingOptions} [options]
 * @returns {T}
 */
export function withIncoming(incoming, fn, options) {
  return storage.run(Object.freeze(pickPropagated(incoming, options)), fn);
}

/**
 * Hono middleware (also fits any `(c, next)` framework whose `c.req.raw` is the Request): the rest of the
 * chain runs inside `withIncoming(c.req.raw)`. Create it once per app.
 * @param {WithIncomingOptions} [options]
 * @returns {(c: { req: { raw: Request } }, next: () => Promise<void>) => Promise<void>}
 */
export function nuncioContext(options) {
  return (c, next) => withIncoming(c.req.raw, next, options);
}

/**
 * The propagated headers of the request being handled ([] outside `withIncoming`): what `call()` adds.
 * @returns {ReadonlyArray<readonly [string, string]>}
 */
export function currentHeaders() {
  return storage.getStore() ?? [];
}

/**
 * The x-request-id of the request being handled, for logs; undefined outside `withIncoming`.
 * @returns {string | undefined}
 */
export function requestId() {
  return currentHeaders().find(([n]) => n === "x-request-id")?.[1];
}

// @ts-check
/**
 * What the proxy's response headers say about a call's failure. Envoy (and nuncio) do not send response
 * flags (UH, UO, UT, ...) to the caller; what they do send is: `x-envoy-overloaded: true` on a 503 from a
 * circuit breaker (UO), `x-envoy-ratelimited` on a 429 from a rate limit (RL), and
 * `x-envoy-upstream-service-time` on every response that came from an upstream, so a 5xx without it was the
 * proxy's own answer (no healthy host, connect failure, timeout). That is all this reads; when the router
 * has `suppress_envoy_headers: true` none of them are there and every failure looks like the upstream's.
 */

/**
 * @typedef {"overloaded" | "rate_limited" | "timeout" | "unavailable" | "bad_gateway" | "upstream" | "client"} FailureReason
 */

/**
 * @typedef {object} ProxyOutcome
 * @property {number} status
 * @property {boolean} ok 2xx/3xx
 * @property {boolean} fromUpstream the response came from the upstream (x-envoy-upstream-service-time)
 * @property {boolean} overloaded x-envoy-overloaded: a circuit breaker refused (back off, do not retry now)
 * @property {boolean} rateLimited x-envoy-ratelimited: a rate limit refused
 * @property {number | undefined} upstreamServiceTimeMs x-envoy-upstream-service-time
 * @property {number | undefined} attempts x-envoy-attempt-count (routes with include_attempt_count_in_response)
 * @property {FailureReason | undefined} reason why it failed, undefined when ok: `timeout`, `unavailable` and
 *   `bad_gateway` are the proxy's local 504/503/502, `upstream` a 5xx the upstream sent, `client` a 4xx
 */

/**
 * @param {Headers} h
 * @param {string} name
 * @returns {number | undefined}
 */
function intHeader(h, name) {
  const v = h.get(name);
  if (v === null || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Reads the proxy's headers of `response` (never its body). Runs after a call; returns the outcome.
 * @param {{ status: number, headers: Headers }} response
 * @returns {ProxyOutcome}
 */
export function proxyOutcome(response) {
  const h = response.headers;
  const status = response.status;
  const upstreamServiceTimeMs = intHeader(h, "x-envoy-upstream-service-time");
  const fromUpstream = upstreamServiceTimeMs !== undefined;
  const overloaded = h.get("x-envoy-overloaded") === "true";
  const rateLimited = h.has("x-envoy-ratelimited");
  const ok = status < 400;
  /** @type {FailureReason | undefined} */
  let reason;
  if (!ok) {
    if (overloaded) reason = "overloaded";
    else if (rateLimited && status === 429) reason = "rate_limited";
    else if (status < 500) reason = "client";
    else if (fromUpstream) reason = "upstream";
    else if (status === 504) reason = "timeout";
    else if (status === 502) reason = "bad_gateway";
    else reason = status === 503 ? "unavailable" : "upstream";
  }
  return {
    status,
    ok,
    fromUpstream,
    overloaded,
    rateLimited,
    upstreamServiceTimeMs,
    attempts: intHeader(h, "x-envoy-attempt-count"),
    reason,
  };
}

/** A failed call: its status and what the proxy's headers said (`outcome`). */
export class ProxyError extends Error {
  /**
   * @param {string} service
   * @param {ProxyOutcome} outcome
   */
  constructor(service, outcome) {
    super(`Call to ${service} failed: ${outcome.status} (${outcome.reason})`);
    this.name = "ProxyError";
    this.service = service;
    this.outcome = outcome;
    this.status = outcome.status;
  }
}

/**
 * Returns `response` when it is not a failure (status < 400); otherwise cancels its body and throws a
 * ProxyError carrying the outcome.
 * @param {string} service for the message
 * @param {Response} response
 * @returns {Promise<Response>}
 */
export async function expectOk(service, response) {
  const outcome = proxyOutcome(response);
  if (outcome.ok) return response;
  await response.body?.cancel().catch(() => {});
  throw new ProxyError(service, outcome);
}

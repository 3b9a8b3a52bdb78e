/**
 * Per-request overrides an internal caller may send (external requests lose every x-envoy-* header in the
 * connection manager): timeouts, retry conditions and limits. Read once per request, then removed from
 * the request so they do not travel upstream.
 */
import type { HeaderMap } from "../../../../http/headers.ts";
import { parseRetryOn } from "../../../../http/routing/retry_policy.ts";

/** What the route says, then overridden by headers. Reused per request by the router (no allocation). */
export interface RequestLimits {
  /** Global timeout in ms (0 = none). */
  timeoutMs: number;
  /** Per-try timeout in ms (0 = none). */
  perTryMs: number;
  /** retry_on bits (0 = no retries). */
  retryOn: number;
  /** Retries allowed. */
  numRetries: number;
  /** x-envoy-retriable-status-codes, or null. */
  extraCodes: number[] | null;
}

/** A non-negative integer header value, or -1. */
function intValue(v: string): number {
  const n = Number(v);
  return v.length > 0 && Number.isInteger(n) && n >= 0 ? n : -1;
}

/**
 * Applies the x-envoy-* override headers in `h` to `limits` and removes them; `respectExpected` makes
 * x-envoy-expected-rq-timeout-ms set the timeout when x-envoy-upstream-rq-timeout-ms is absent.
 */
export function applyOverrides(h: HeaderMap, limits: RequestLimits, respectExpected: boolean): void {
  const names = h.names;
  const values = h.values;
  let found = false;
  let timeout = -1;
  let expected = -1;
  let maxRetries = -1;
  let headerRetryOn = false;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (name.length < 12 || name.charCodeAt(0) !== 120 || !name.startsWith("x-envoy-")) continue;
    const v = values[i];
    switch (name) {
      case "x-envoy-upstream-rq-timeout-ms":
        timeout = intValue(v);
        break;
      case "x-envoy-upstream-rq-per-try-timeout-ms": {
        const n = intValue(v);
        if (n >= 0) limits.perTryMs = n;
        break;
      }
      case "x-envoy-expected-rq-timeout-ms":
        expected = intValue(v);
        break;
      case "x-envoy-max-retries":
        maxRetries = intValue(v);
        break;
      case "x-envoy-retry-on":
        limits.retryOn |= parseRetryOn(v).bits;
        headerRetryOn = true;
        break;
      case "x-envoy-retry-grpc-on":
        limits.retryOn |= parseRetryOn(v, true).bits;
        headerRetryOn = true;
        break;
      case "x-envoy-retriable-status-codes": {
        const codes = v.split(",").map((c) => intValue(c.trim())).filter((c) => c >= 100 && c < 600);
        limits.extraCodes = codes;
        break;
      }
      default:
        continue;
    }
    found = true;
  }
  if (!found) return;
  if (timeout >= 0) limits.timeoutMs = timeout;
  else if (respectExpected && expected >= 0) limits.timeoutMs = expected;
  if (maxRetries >= 0) limits.numRetries = maxRetries;
  else if (headerRetryOn && limits.numRetries === 0) limits.numRetries = 1;
  h.remove("x-envoy-upstream-rq-timeout-ms");
  h.remove("x-envoy-upstream-rq-per-try-timeout-ms");
  h.remove("x-envoy-max-retries");
  h.remove("x-envoy-retry-on");
  h.remove("x-envoy-retry-grpc-on");
  h.remove("x-envoy-retriable-status-codes");
}

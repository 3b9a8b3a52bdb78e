/**
 * The router's preparation of a routed request, once, before its first attempt: the upstream request head,
 * the effective global and per-try timeouts and retry policy (the route's, then an internal caller's
 * x-envoy-* overrides), x-envoy-expected-rq-timeout-ms, chunked framing, mirrors, request body buffering
 * for retries and shadows, and the start of the route idle timeout.
 */
import type { RouterFilter } from "./filter.ts";
import { MirrorSet } from "./mirror.ts";
import { applyOverrides } from "./overrides.ts";
import { prepareRequestHeaders } from "./request_head.ts";
import { RetryState } from "./retry_state.ts";
import { armStreamTimer } from "./stream_timeouts.ts";

/** Envoy's default for the buffered request body (the listener's per_connection_buffer_limit_bytes). */
export const DEFAULT_BUFFER_LIMIT = 1024 * 1024;

/**
 * Sets up `f` (route and cluster chosen) for its attempts; `endStream`: the request has no body. When it
 * is complete already, shadows go out and the global timeout starts.
 */
export function prepareRequest(f: RouterFilter, endStream: boolean): void {
  const cb = f.cb;
  const route = f.route!;
  const req = cb.request;
  const h = req.headers;
  const upgrade = cb.upgradeType;
  const config = f.f.config;
  const ctx = f.f.ctx;
  f.path = prepareRequestHeaders(cb, route);
  // ---- timeouts and retries: the route's, then an internal caller's overrides ----
  const policy = route.retryPolicy;
  f.timeoutMs = route.timeoutMs;
  if (policy !== null) {
    f.perTryMs = policy.perTryTimeoutMs;
    f.retryOn = policy.retryOn;
    f.numRetries = policy.numRetries;
  }
  if (cb.internal) applyOverrides(h, f, config.respect_expected_rq_timeout);
  if (f.perTryMs >= f.timeoutMs && f.timeoutMs > 0) f.perTryMs = 0;
  const expected = f.perTryMs > 0 ? f.perTryMs : f.timeoutMs;
  if (expected > 0 && !config.suppress_envoy_headers) {
    h.set("x-envoy-expected-rq-timeout-ms", String(expected));
  }
  if (f.retryOn !== 0 && !upgrade && (policy === null || policy.requestRetriable(req))) {
    f.retry = new RetryState(policy, f.retryOn, f.numRetries, f, ctx.timers, f.f.random);
    f.retry.extraCodes = f.extraCodes;
  }
  if (req.contentLength < 0 && !endStream) {
    h.addLower("transfer-encoding", "chunked");
    f.chunkedUp = true;
  }
  if (route.mirrorPolicies.length > 0) {
    f.shadows = MirrorSet.create(ctx, route, h, f.timeoutMs, f.f.random, f.cb);
  }
  if (!endStream && (f.retry !== null || f.shadows !== null)) {
    f.body = [];
    f.bufferLimit = route.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT;
  }
  if (route.idleTimeoutMs !== undefined && route.idleTimeoutMs > 0) {
    f.idleMs = route.idleTimeoutMs;
    f.lastActivity = ctx.clock.monotonic();
  }
  f.upstreamStart = ctx.clock.monotonic();
  f.bodyEnd = endStream;
  if (endStream) f.requestComplete(f.upstreamStart);
  else if (f.idleMs > 0) armStreamTimer(f);
}

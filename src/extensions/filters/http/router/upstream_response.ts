/**
 * What becomes of an attempt's outcome: a response head is retried (retry_on, retriable status codes) or
 * accepted and decorated (x-envoy-upstream-service-time, x-envoy-attempt-count, the route's response header
 * mutations); a failure before the head is retried or becomes Envoy's local reply for it; a failure after
 * it resets the downstream stream.
 */
import { Logger } from "../../../../common/log.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { retryOnNames } from "../../../../http/routing/retry_policy.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { UpstreamError } from "../../../../upstream/types.ts";
import type { Attempt } from "./attempt.ts";
import type { RouterFilter } from "./filter.ts";
import { failureReply } from "./replies.ts";
import { RetryDecision, retryStats } from "./retry_state.ts";

const log = new Logger("router");

const DECISIONS = [
  "not retriable",
  "performing retry",
  "retry limit exceeded",
  "retry overflow (max_retries)",
];

/** Debug line for a retry decision on `what` (a status or a failure); called only with debug on. */
function logRetry(f: RouterFilter, d: RetryDecision, what: string): void {
  const retry = f.retry!;
  let line = `${f.cb.streamInfo.logPrefix()}${DECISIONS[d]}: retry_on '${retryOnNames(retry.retryOn)}'`;
  line += d === RetryDecision.No ? ` does not match ${what}` : ` matched ${what}`;
  if (d === RetryDecision.Yes) line += `, retry ${retry.retries}, backoff ${retry.backoffMs} ms`;
  log.debug(line);
}

/** The response flag a retry decision that ends the retries adds (URX, UO), or 0. */
function retryFlag(d: RetryDecision): number {
  if (d === RetryDecision.LimitExceeded) return ResponseFlag.UpstreamRetryLimitExceeded;
  if (d === RetryDecision.Overflow) return ResponseFlag.UpstreamOverflow;
  return 0;
}

/** A response head arrived on `a`: true lets it through downstream, false means a retry takes over. */
export function acceptResponseHead(f: RouterFilter, a: Attempt, status: number, headers: HeaderMap): boolean {
  if (a !== f.attempt || f.finished) return false;
  const retry = f.retry;
  const ctx = f.f.ctx;
  if (retry !== null) {
    const stats = retry.stats(f.cluster!, ctx.stats);
    const d = retry.onResponse(status, headers, f.breakers!, stats);
    if (d !== RetryDecision.No && log.enabled("debug")) logRetry(f, d, `upstream status ${status}`);
    if (d === RetryDecision.Yes) {
      f.attempt = null;
      return false;
    }
    f.flags |= retryFlag(d);
  }
  const cb = f.cb;
  const info = cb.streamInfo;
  info.responseFlags |= f.flags;
  info.responseCodeDetails = "via_upstream";
  const route = f.route!;
  if (!f.f.config.suppress_envoy_headers) {
    headers.set(
      "x-envoy-upstream-service-time",
      String(Math.round((a.rxMono || ctx.clock.monotonic()) - f.upstreamStart)),
    );
  }
  if (route.includeAttemptCountInResponse) headers.set("x-envoy-attempt-count", String(f.attempts));
  if (!route.responseHeaders.empty) route.responseHeaders.apply(headers, cb.routeContext());
  return true;
}

/** `a` failed with `err` before its head went downstream: a retry, or the local reply for it. */
export function attemptFailed(f: RouterFilter, a: Attempt, err: UpstreamError): void {
  if (a !== f.attempt || f.finished || f.destroyed) return;
  f.attempt = null;
  const retry = f.retry;
  const ctx = f.f.ctx;
  const kind = err.kind;
  const detail = err.detail;
  if (kind === "per_try_timeout") retryStats(f.cluster!, ctx.stats).upstream_rq_per_try_timeout.inc();
  if (log.enabled("debug")) {
    const p = f.cb.streamInfo.logPrefix();
    const host = f.cb.streamInfo.upstreamHost;
    if (kind === "per_try_timeout") log.debug(`${p}upstream per try timeout (${f.perTryMs} ms) on ${host}`);
    else if (err.beforeConnect) log.debug(`${p}upstream connect failure to ${host}: ${detail}`);
    else log.debug(`${p}upstream attempt to ${host} failed before response headers: ${detail}`);
  }
  if (retry !== null && err.retryable) {
    const d = retry.onReset(err, f.breakers!, retry.stats(f.cluster!, ctx.stats));
    if (log.enabled("debug")) logRetry(f, d, `failure '${detail}'`);
    if (d === RetryDecision.Yes) return;
    f.flags |= retryFlag(d);
  }
  f.finish();
  const r = failureReply(err, f.f.config.suppress_envoy_headers);
  if (r.timeout) f.cluster!.stats.upstream_rq_timeout.inc();
  if (r.transportFailure) f.cb.streamInfo.upstreamTransportFailureReason = detail;
  f.localReply(r.status, r.body, r.flag, r.details, r.headers).catch(() => f.cb.resetStream());
}

/** `a` failed after its head went downstream: the stream is reset with `flag` (UC, UR) and `reason`. */
export function attemptResetAfterHeaders(f: RouterFilter, a: Attempt, flag: number, reason: string): void {
  if (a !== f.attempt || f.destroyed) return;
  f.finish();
  const info = f.cb.streamInfo;
  info.responseFlags |= flag;
  info.responseCodeDetails = `upstream_reset_after_response_started{${reason}}`;
  f.cb.resetStream();
}

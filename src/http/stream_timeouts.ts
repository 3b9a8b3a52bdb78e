/**
 * The per-stream timeouts of an ActiveStream, on the stream's one TimerEntry in the timer wheel: stream idle
 * (`stream_idle_timeout`, refreshed by `touch()`), request (`request_timeout`, until the request is complete)
 * and max stream duration (the HCM's, or the route's `max_stream_duration` / the grpc-timeout it allows).
 * The entry is armed for the nearest deadline; when it fires the stream answers 408/504 locally or resets.
 */
import { ResponseFlag } from "../common/response_flags.ts";
import { GrpcStatus, type StreamDurationConfig, streamDurationMs } from "./grpc_util.ts";
import type { ActiveStream } from "./active_stream.ts";

const STREAM_IDLE = 1;
const REQUEST_TIMEOUT = 2;
const MAX_DURATION = 3;

/** @internal Sets the deadlines the HCM configures for a new stream and arms its timer (if any is set). */
export function startStreamTimeouts(s: ActiveStream): void {
  const o = s.cfg.opts;
  if (o.streamIdleTimeoutMs > 0 || o.requestTimeoutMs > 0 || o.maxStreamDurationMs > 0) {
    const start = s.streamInfo.startMono;
    s.lastActivity = start;
    if (o.requestTimeoutMs > 0) s.deadlineRequest = start + o.requestTimeoutMs;
    if (o.maxStreamDurationMs > 0) s.deadlineDuration = start + o.maxStreamDurationMs;
    armStreamTimer(s);
  }
}

/** Arms the stream's timer for the nearest deadline (none: left as is). */
function armStreamTimer(s: ActiveStream): void {
  const timers = s.cfg.timers;
  const now = timers.now();
  let next = Infinity;
  const o = s.cfg.opts;
  if (o.streamIdleTimeoutMs > 0) next = s.lastActivity + o.streamIdleTimeoutMs;
  if (s.deadlineRequest && !s.requestDone) next = Math.min(next, s.deadlineRequest);
  if (s.deadlineDuration) next = Math.min(next, s.deadlineDuration);
  if (next === Infinity) return;
  timers.arm(s.timer, Math.max(1, next - now), 0);
}

/** @internal The stream's timer fired: re-arms if no deadline passed yet, else ends the stream. */
export function streamTimedOut(s: ActiveStream): void {
  if (s.responseDone) return;
  const now = s.cfg.clock.monotonic();
  const o = s.cfg.opts;
  let fired = 0;
  if (s.deadlineDuration && now >= s.deadlineDuration) fired = MAX_DURATION;
  else if (s.deadlineRequest && !s.requestDone && now >= s.deadlineRequest) {
    fired = REQUEST_TIMEOUT;
  } else if (o.streamIdleTimeoutMs > 0 && now >= s.lastActivity + o.streamIdleTimeoutMs) {
    fired = STREAM_IDLE;
  }
  if (!fired) {
    armStreamTimer(s);
    return;
  }
  const stats = s.cfg.stats;
  if (fired === STREAM_IDLE) {
    stats.downstream_rq_idle_timeout.inc();
    s.streamInfo.responseFlags |= ResponseFlag.StreamIdleTimeout;
  } else if (fired === REQUEST_TIMEOUT) {
    stats.downstream_rq_timeout.inc();
  } else {
    stats.downstream_rq_max_duration_reached.inc();
    s.streamInfo.responseFlags |= ResponseFlag.UpstreamMaxStreamDurationReached;
  }
  const details = fired === STREAM_IDLE
    ? "stream_idle_timeout"
    : fired === REQUEST_TIMEOUT
    ? "request_overall_timeout"
    : "max_duration_timeout";
  s.abortFilters();
  if (!s.responseStarted) {
    s.closeConnection = true;
    // Envoy: 408 while the request is still arriving, 504 after; gRPC callers get DEADLINE_EXCEEDED
    s.sendLocalReply(
      fired === MAX_DURATION && s.requestDone ? 504 : 408,
      fired === MAX_DURATION ? "downstream duration timeout" : "stream timeout",
      { details, grpcStatus: fired === MAX_DURATION ? GrpcStatus.DeadlineExceeded : undefined },
    ).catch(() => s.resetStream());
  } else {
    s.streamInfo.responseCodeDetails = details;
    s.resetStream();
  }
}

/** @internal The route's max_stream_duration (or the grpc-timeout it allows) replaces the HCM's (Envoy). */
export function applyStreamDuration(s: ActiveStream, c: StreamDurationConfig): void {
  const ms = streamDurationMs(
    c,
    s.request.headers.get("grpc-timeout"),
    s.cfg.opts.maxStreamDurationMs,
  );
  s.deadlineDuration = ms > 0 ? s.streamInfo.startMono + ms : 0;
  if (s.lastActivity === 0) s.lastActivity = s.streamInfo.startMono;
  if (!s.responseDone) armStreamTimer(s);
}

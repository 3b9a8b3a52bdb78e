/**
 * The router's stream timeouts, on one timer-wheel entry per request: the global route timeout (counted
 * from the end of the downstream request; UT 504, upstream_rq_timeout) and the route idle timeout (no
 * activity either way; SI 408). Once the response started downstream, either resets the stream instead.
 */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import type { RouterFilter } from "./filter.ts";

/** Timer kind: the global timeout. */
const TIMER_GLOBAL = 0;
/** Timer kind: the idle timeout. */
const TIMER_IDLE = 1;

/** The request is complete at monotonic `now`: the global timeout starts (`f.timeoutMs` > 0). */
export function startGlobalTimeout(f: RouterFilter, now: number): void {
  f.deadline = now + f.timeoutMs;
  if (f.idleMs > 0) armStreamTimer(f);
  else f.f.ctx.timers.arm(f.timer, f.timeoutMs, TIMER_GLOBAL);
}

/** Arms the timer for whichever of the global deadline and the idle deadline comes first. */
export function armStreamTimer(f: RouterFilter): void {
  let next = f.deadline > 0 ? f.deadline : Infinity;
  let kind = TIMER_GLOBAL;
  if (f.idleMs > 0 && f.lastActivity + f.idleMs < next) {
    next = f.lastActivity + f.idleMs;
    kind = TIMER_IDLE;
  }
  if (next === Infinity) return;
  const ctx = f.f.ctx;
  ctx.timers.arm(f.timer, Math.max(1, next - ctx.clock.monotonic()), kind);
}

/** The stream timer fired with `kind`: re-arms after activity, else ends the request. */
export function streamTimeout(f: RouterFilter, kind: number): void {
  if (f.finished || f.destroyed) return;
  const a = f.attempt;
  if (a !== null && a.upstreamComplete) return;
  const cb = f.cb;
  const now = f.f.ctx.clock.monotonic();
  const idle = kind === TIMER_IDLE || (f.deadline === 0 || now < f.deadline);
  if (idle && f.idleMs > 0 && now < f.lastActivity + f.idleMs) {
    armStreamTimer(f); // activity since: not idle
    return;
  }
  const cluster = f.cluster!;
  if (!idle) cluster.stats.upstream_rq_timeout.inc();
  if (a !== null) {
    if (!idle) {
      a.host.stats.rq_timeout++;
      cluster.recordOutcome(a.host, 504);
    }
    a.abort();
  }
  f.attempt = null;
  f.finish();
  const flag = idle ? ResponseFlag.StreamIdleTimeout : ResponseFlag.UpstreamRequestTimeout;
  if (!cb.responseStarted) {
    if (idle) {
      f.localReply(408, "stream timeout", flag, "stream_idle_timeout").catch(() => cb.resetStream());
    } else {
      f.localReply(504, "upstream request timeout", flag, "upstream_response_timeout")
        .catch(() => cb.resetStream());
    }
  } else {
    cb.streamInfo.responseFlags |= flag;
    cb.resetStream();
  }
}

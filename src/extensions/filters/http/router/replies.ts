/** The router's own answers: direct responses, redirects, and local replies for failed attempts. */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type HttpFilterCallbacks, HttpFilterStatus } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import type { RouteEntry } from "../../../../http/routing/types.ts";
import { ResetKind } from "../../../../http/routing/retry_policy.ts";
import { AttemptFailure } from "./attempt.ts";

/** A local reply for an attempt failure. */
export interface FailureReply {
  status: number;
  body: string;
  flag: number;
  details: string;
  headers: [string, string][] | undefined;
  /** Counts as upstream_rq_timeout. */
  timeout: boolean;
  /** `detail` is the upstream transport failure reason. */
  transportFailure: boolean;
}

const RESET = "upstream connect error or disconnect/reset before headers. reset reason:";

/** Envoy's reply for `why` (`detail` from the pool or the attempt). */
export function failureReply(
  why: AttemptFailure,
  detail: string,
  suppressEnvoyHeaders: boolean,
): FailureReply {
  switch (why) {
    case AttemptFailure.Overflow:
      return {
        status: 503,
        body: `${RESET} overflow`,
        flag: ResponseFlag.UpstreamOverflow,
        details: "upstream_reset_before_response_started{overflow}",
        headers: suppressEnvoyHeaders ? undefined : [["x-envoy-overloaded", "true"]],
        timeout: false,
        transportFailure: false,
      };
    case AttemptFailure.ConnectFailure:
      return {
        status: 503,
        body: `${RESET} connection failure, transport failure reason: ${detail}`,
        flag: ResponseFlag.UpstreamConnectionFailure,
        details: "upstream_reset_before_response_started{connection_failure}",
        headers: undefined,
        timeout: false,
        transportFailure: true,
      };
    case AttemptFailure.ProtocolError:
      return {
        status: 502,
        body: "upstream protocol error",
        flag: ResponseFlag.UpstreamProtocolError,
        details: "upstream_protocol_error",
        headers: undefined,
        timeout: false,
        transportFailure: false,
      };
    case AttemptFailure.RemoteReset:
    case AttemptFailure.Refused: {
      const reason = why === AttemptFailure.Refused ? "remote_refused_stream_reset" : "remote_reset";
      return {
        status: 503,
        body: `${RESET} ${why === AttemptFailure.Refused ? "remote refused stream reset" : "remote reset"}`,
        flag: ResponseFlag.UpstreamRemoteReset,
        details: `upstream_reset_before_response_started{${reason}}`,
        headers: undefined,
        timeout: false,
        transportFailure: false,
      };
    }
    case AttemptFailure.PerTryTimeout:
      return {
        status: 504,
        body: "upstream request timeout",
        flag: ResponseFlag.UpstreamRequestTimeout,
        details: "upstream_per_try_timeout",
        headers: undefined,
        timeout: true,
        transportFailure: false,
      };
    default:
      return {
        status: 503,
        body: `${RESET} connection termination`,
        flag: ResponseFlag.UpstreamConnectionTermination,
        details: "upstream_reset_before_response_started{connection_termination}",
        headers: undefined,
        timeout: false,
        transportFailure: false,
      };
  }
}

/** How a failure counts for retry_on, or null when it is never retried (overflow). */
export function retriedFailureKind(why: AttemptFailure): ResetKind | null {
  switch (why) {
    case AttemptFailure.Overflow:
      return null;
    case AttemptFailure.ConnectFailure:
      return ResetKind.ConnectFailure;
    case AttemptFailure.PerTryTimeout:
      return ResetKind.PerTryTimeout;
    default:
      return ResetKind.Reset;
  }
}

/** Maps any settled reply to StopIteration (the router always stops the chain). */
export function stopIteration(): HttpFilterStatus {
  return HttpFilterStatus.StopIteration;
}

/** Answers a direct_response or redirect route (its response header mutations apply). */
export async function directReply(
  cb: HttpFilterCallbacks,
  route: RouteEntry,
  status: number,
  body: Uint8Array,
  location: string | null,
): Promise<void> {
  const h = new HeaderMap();
  if (location) h.addLower("location", location);
  if (body.length > 0) h.addLower("content-type", "text/plain");
  if (!route.responseHeaders.empty) route.responseHeaders.apply(h, cb.routeContext());
  cb.streamInfo.responseCodeDetails = "direct_response";
  if (body.length > 0) h.set("content-length", String(body.length));
  await cb.encodeHeaders({ status, headers: h }, body.length === 0);
  if (body.length > 0) await cb.encodeData(body, true);
}

/** A local reply's content. */
export interface LocalReply {
  status: number;
  body: string;
  flags: number;
  details: string;
  extra?: [string, string][];
}

/**
 * Sends a local reply with the route's response header mutations (when a route matched) and, when
 * `attempts` > 0, x-envoy-attempt-count.
 */
export async function localReply(
  cb: HttpFilterCallbacks,
  route: RouteEntry | null,
  attempts: number,
  r: LocalReply,
): Promise<void> {
  const headers: [string, string][] = r.extra ?? [];
  if (route && !route.responseHeaders.empty) {
    const h = new HeaderMap();
    route.responseHeaders.apply(h, cb.routeContext());
    for (const p of h) headers.push(p);
  }
  if (attempts > 0) headers.push(["x-envoy-attempt-count", String(attempts)]);
  await cb.sendLocalReply(r.status, r.body, { flags: r.flags, details: r.details, headers });
}

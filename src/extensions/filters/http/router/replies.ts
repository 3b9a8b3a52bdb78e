/** The router's own answers: direct responses, redirects, and local replies for failed attempts. */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type HttpFilterCallbacks, HttpFilterStatus } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import type { RouteEntry } from "../../../../http/routing/types.ts";
import type { UpstreamError } from "../../../../upstream/types.ts";

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

/** Envoy's reply for an attempt that failed with `err` before its response head. */
export function failureReply(err: UpstreamError, suppressEnvoyHeaders: boolean): FailureReply {
  const kind = err.kind;
  switch (kind) {
    case "overflow":
      return {
        status: 503,
        body: `${RESET} overflow`,
        flag: ResponseFlag.UpstreamOverflow,
        details: "upstream_reset_before_response_started{overflow}",
        headers: suppressEnvoyHeaders ? undefined : [["x-envoy-overloaded", "true"]],
        timeout: false,
        transportFailure: false,
      };
    case "connect_failure":
    case "connect_timeout":
    case "no_healthy_host":
    case "cancelled":
      return {
        status: 503,
        body: `${RESET} connection failure, transport failure reason: ${err.detail}`,
        flag: ResponseFlag.UpstreamConnectionFailure,
        details: "upstream_reset_before_response_started{connection_failure}",
        headers: undefined,
        timeout: false,
        transportFailure: true,
      };
    case "protocol_error":
      return {
        status: 502,
        body: "upstream protocol error",
        flag: ResponseFlag.UpstreamProtocolError,
        details: "upstream_protocol_error",
        headers: undefined,
        timeout: false,
        transportFailure: false,
      };
    case "remote_reset":
    case "remote_refused_stream_reset": {
      return {
        status: 503,
        body: `${RESET} ${kind === "remote_reset" ? "remote reset" : "remote refused stream reset"}`,
        flag: ResponseFlag.UpstreamRemoteReset,
        details: `upstream_reset_before_response_started{${kind}}`,
        headers: undefined,
        timeout: false,
        transportFailure: false,
      };
    }
    case "per_try_timeout":
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

/**
 * Envoy's request header handling shared by both codecs: x-forwarded-for and the trusted remote address,
 * internal requests, x-envoy-* sanitizing, x-request-id, x-forwarded-proto, via, host port stripping and
 * x-forwarded-client-cert (xfcc.ts).
 */
import type { DownstreamConnection } from "../network/filter.ts";
import type { ActiveStream } from "./active_stream.ts";
import { isInternalAddress, splitXff } from "./address.ts";
import type { HcmOptions } from "./hcm_config.ts";
import { mutateXfcc } from "./xfcc.ts";

/** Applies the request header handling to `stream.request` (runs once per request, before the filters). */
export function mutateRequestHeaders(o: HcmOptions, down: DownstreamConnection, stream: ActiveStream): void {
  const request = stream.request;
  const headers = request.headers;
  const xffRaw = headers.get("x-forwarded-for");
  const xff = splitXff(xffRaw);
  let remoteIp = down.remoteIp;
  let internal: boolean;
  if (o.useRemoteAddress) {
    if (o.xffNumTrustedHops > 0 && xff.length >= o.xffNumTrustedHops) {
      remoteIp = xff[xff.length - o.xffNumTrustedHops];
    }
    internal = xff.length === 0 && isInternalAddress(down.remoteIp, o.internalCidrs);
    if (!o.skipXffAppend) {
      headers.set("x-forwarded-for", xffRaw ? `${xffRaw},${down.remoteIp}` : down.remoteIp);
    }
    headers.set("x-forwarded-proto", down.scheme);
  } else {
    if (xff.length > o.xffNumTrustedHops) remoteIp = xff[xff.length - 1 - o.xffNumTrustedHops];
    internal = xff.length === 1 && isInternalAddress(xff[0], o.internalCidrs);
    if (!headers.has("x-forwarded-proto")) headers.addLower("x-forwarded-proto", down.scheme);
  }
  stream.remoteIp = remoteIp;
  stream.internal = internal;
  if (remoteIp !== down.remoteIp) {
    stream.streamInfo.downstreamRemoteAddress = remoteIp.includes(":") ? `[${remoteIp}]:0` : `${remoteIp}:0`;
  }
  if (!internal) {
    // External requests may not steer the proxy: drop every x-envoy-* header they sent.
    let any = false;
    const names = headers.names;
    for (let i = 0; i < names.length; i++) {
      if (names[i].charCodeAt(0) === 120 && names[i].startsWith("x-envoy-")) {
        any = true;
        break;
      }
    }
    if (any) headers.removePrefix("x-envoy-");
  } else {
    headers.set("x-envoy-internal", "true");
  }
  if (o.userAgent !== undefined) {
    // add_user_agent: the calling service's cluster (and node) for the upstream; after the sanitizing above
    headers.set("x-envoy-downstream-service-cluster", o.userAgent);
    if (!headers.get("user-agent")) headers.set("user-agent", o.userAgent);
  }
  if (o.downstreamServiceNode) headers.set("x-envoy-downstream-service-node", o.downstreamServiceNode);
  if (o.generateRequestId) {
    const id = headers.get("x-request-id");
    if (id === undefined) headers.addLower("x-request-id", crypto.randomUUID());
    else if (!id || (!internal && !o.preserveExternalRequestId)) {
      headers.set("x-request-id", crypto.randomUUID());
    }
  }
  if (o.via) headers.addLower("via", o.via);
  if (o.stripPort !== "none") {
    const a = request.authority;
    const colon = a.lastIndexOf(":");
    if (colon > 0 && !a.endsWith("]")) {
      const port = a.slice(colon + 1);
      const local = down.localAddress.slice(down.localAddress.lastIndexOf(":") + 1);
      if (o.stripPort === "any" || port === local) request.authority = a.slice(0, colon);
    }
  }
  mutateXfcc(headers, o.forwardClientCert ?? "SANITIZE", o.xfcc, down.tls);
  stream.streamInfo.authority = request.authority;
  stream.streamInfo.path = request.path;
  const tracing = stream.cfg.tracing;
  if (tracing !== null) stream.activeSpan = tracing.begin(stream, stream.streamInfo.startTime);
}

/**
 * Drops (DROP_HEADER) header names containing "_" or reports them (REJECT_REQUEST: returns true), per
 * headers_with_underscores_action.
 */
export function underscoreHeaders(o: HcmOptions, stream: ActiveStream): boolean {
  if (o.headersWithUnderscores === "ALLOW") return false;
  const headers = stream.request.headers;
  for (let i = headers.size - 1; i >= 0; i--) {
    if (headers.names[i].includes("_")) {
      if (o.headersWithUnderscores === "REJECT_REQUEST") return true;
      headers.names.splice(i, 1);
      headers.values.splice(i, 1);
    }
  }
  return false;
}

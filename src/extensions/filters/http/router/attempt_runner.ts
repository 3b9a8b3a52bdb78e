/**
 * Starting one attempt of a routed request: the host (load balancer, with the hash policy and, on retries,
 * the previous_hosts predicate), the per-attempt headers and stream info, and the attempt itself over
 * HTTP/2 or HTTP/1.1 (an HTTP/2 attempt whose host ALPN-negotiates HTTP/1.1 goes again over HTTP/1.1).
 */
import { Logger } from "../../../../common/log.ts";
import type { MetadataMatchCriteria } from "../../../../common/metadata_match.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import type { HttpFilterCallbacks } from "../../../../http/filter.ts";
import { HttpFilterStatus } from "../../../../http/filter.ts";
import { encodeRequestHead } from "../../../../http/h1_glue.ts";
import type { RouteActionEntry, RouteEntry } from "../../../../http/routing/types.ts";
import type { Cluster, Host, LbContext } from "../../../../upstream/types.ts";
import type { RouterFilter } from "./filter.ts";
import { H2Start, H2UpstreamRequest } from "./h2_upstream_request.ts";
import { h2RequestHead, useH2 } from "./request_head.ts";
import type { RetryState } from "./retry_state.ts";
import { UpstreamRequest } from "./upstream_request.ts";
import type { Span } from "../../../../tracing/types.ts";

/** The load-balancer context of a request without hash policy or hosts to avoid (shared, never mutated). */
const NO_LB_CONTEXT: LbContext = {};
const log = new Logger("router");

/** Picks the host of the next attempt (null: none healthy). */
function chooseHost(
  cb: HttpFilterCallbacks,
  route: RouteEntry & RouteActionEntry,
  cluster: Cluster,
  retry: RetryState | null,
  metadataMatch: MetadataMatchCriteria | null,
): Host | null {
  const hash = route.hasHashPolicy ? route.hash(cb.request, cb.routeContext()) : undefined;
  if (cluster.connectsToOriginalDst) {
    const avoid = retry?.attempted;
    const originalDst = cb.routeContext().originalDst;
    return cluster.chooseHost({
      hash,
      avoid,
      metadataMatch,
      originalDst,
      requestHeaders: cb.request.headers,
    });
  }
  if (retry !== null && retry.attempted.length > 0 && retry.policy?.previousHosts) {
    const avoid = retry.attempted;
    const ctx: LbContext = { hash, avoid, metadataMatch };
    let host = cluster.chooseHost(ctx);
    for (let i = 1; i < retry.policy.hostSelectionMaxAttempts && host && avoid.includes(host); i++) {
      host = cluster.chooseHost(ctx);
    }
    return host;
  }
  if (metadataMatch !== null) return cluster.chooseHost({ hash, metadataMatch });
  return cluster.chooseHost(hash !== undefined ? { hash } : NO_LB_CONTEXT);
}

/** Monotonic start of the current attempt: the first one starts with the upstream request. */
function attemptStart(f: RouterFilter): number {
  return f.attempts === 1 ? f.upstreamStart : f.f.ctx.clock.monotonic();
}

/**
 * Picks a host and runs one attempt of `f`: StopIteration once it is under way (or failed), a promise of that
 * when the attempt had to wait (a connection to open; HTTP/1.1).
 */
export function startAttempt(f: RouterFilter): HttpFilterStatus | Promise<HttpFilterStatus> {
  const cb = f.cb;
  const route = f.route!;
  const cluster = f.cluster!;
  const req = cb.request;
  const retry = f.retry;
  const host = chooseHost(cb, route, cluster, retry, f.metadataMatch);
  if (log.enabled("debug")) {
    log.debug(
      host
        ? `${cb.streamInfo.logPrefix()}host ${host.addressString} chosen by the load balancer of cluster ` +
          `'${cluster.name}' (attempt ${f.attempts + 1}${route.hasHashPolicy ? ", hash policy" : ""})`
        : `${cb.streamInfo.logPrefix()}no healthy host in cluster '${cluster.name}'`,
    );
  }
  if (!host) {
    f.finish();
    return f.localReply(503, "no healthy upstream", ResponseFlag.NoHealthyUpstream, "no_healthy_upstream");
  }
  retry?.attempted.push(host);
  const info = cb.streamInfo;
  info.upstreamHost = host.addressString;
  info.attemptCount = ++f.attempts;
  const h = req.headers;
  if (route.autoHostRewrite) h.set("host", host.hostname);
  if (route.includeRequestAttemptCount) h.set("x-envoy-attempt-count", String(f.attempts));
  let span: Span | null = null;
  if (f.childSpans) {
    span = cb.tracing!.upstreamSpan(cb.activeSpan!, cluster.name, f.attempts);
    span.injectContext(h);
  }
  const proto = cluster.httpProtocol;
  if (proto !== undefined && proto !== 0 && useH2(proto, cb)) {
    const a2 = new H2UpstreamRequest(f, cluster, host, f.breakers!, route.priority);
    if (span !== null) a2.traceWith(span, cb.tracing!, "HTTP/2");
    a2.startMono = attemptStart(f);
    if (f.perTryMs > 0) a2.setPerTryTimeout(f.perTryMs);
    f.attempt = a2;
    const r = a2.start(h2RequestHead(req, f.path));
    if (r instanceof Promise) return r.then((v) => afterH2Start(f, a2, v, host, span));
    return afterH2Start(f, a2, r, host, span);
  }
  return startHttp1(f, host, span);
}

/** The HTTP/2 start ended with `r`: done, unless ALPN chose HTTP/1.1 for the host. */
function afterH2Start(
  f: RouterFilter,
  a2: H2UpstreamRequest,
  r: H2Start,
  host: Host,
  span: Span | null,
): HttpFilterStatus | Promise<HttpFilterStatus> {
  if (r !== H2Start.Http1 || f.attempt !== a2 || f.finished) return HttpFilterStatus.StopIteration;
  // ALPN chose HTTP/1.1 for this host: the same attempt goes over HTTP/1.1
  a2.span = null;
  return startHttp1(f, host, span);
}

/** Runs the attempt over HTTP/1.1. */
async function startHttp1(f: RouterFilter, host: Host, span: Span | null): Promise<HttpFilterStatus> {
  const cb = f.cb;
  const route = f.route!;
  const cluster = f.cluster!;
  const req = cb.request;
  let head: Uint8Array;
  try {
    head = encodeRequestHead(req.method, f.path, req.headers);
  } catch (e) {
    // a filter set a value HTTP/1.1 cannot carry (a CR or LF from an authorization service, say): the
    // request fails, the connection and the other streams on it do not
    log.debug(`${cb.streamInfo.logPrefix()}cannot encode the upstream request: ${(e as Error).message}`);
    if (span !== null) {
      cb.tracing!.finishUpstream(span, {
        protocol: "HTTP/1.1",
        status: 0,
        flags: 0,
        cluster: cluster.name,
        host: host.addressString,
      });
    }
    return await f.localReply(503, "", ResponseFlag.LocalReset, "filter_added_invalid_request_data");
  }
  const a = new UpstreamRequest(f, cluster, host, f.breakers!, route.priority);
  if (span !== null) a.traceWith(span, cb.tracing!, "HTTP/1.1");
  a.startMono = attemptStart(f);
  if (f.perTryMs > 0) a.setPerTryTimeout(f.perTryMs);
  f.attempt = a;
  await a.start(head, f.chunkedUp);
  return HttpFilterStatus.StopIteration;
}

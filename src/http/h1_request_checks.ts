/**
 * The HTTP/1.1 connection manager's protocol-level checks on one request head, run before any HTTP filter:
 * HTTP/1.0 policy (accept_http_10, default_host_for_http_10), absolute-form URLs, CONNECT, headers with
 * underscores, path normalization (which may also redirect) and the upgrade allow-list. Synchronous and
 * allocation-free on the pass path; the connection sends the local reply the result asks for.
 */
import type { ActiveStream } from "./active_stream.ts";
import { preparePath, type RequestHead } from "./h1_glue.ts";
import type { HcmOptions, HcmStats } from "./hcm_config.ts";
import { underscoreHeaders } from "./request_headers.ts";

/**
 * A request answered before any filter runs: a protocol reject (`status`, `details`), or, when `status` is
 * 307 and `location` is set, a redirect to the normalized path.
 */
export interface H1Reject {
  readonly status: number;
  readonly details: string;
  readonly location?: string;
}

const LOW_VERSION: H1Reject = Object.freeze({ status: 426, details: "low_version" });
const MISSING_HOST: H1Reject = Object.freeze({ status: 400, details: "missing_host_header" });
const ABSOLUTE_URL: H1Reject = Object.freeze({ status: 400, details: "absolute_path_rejected" });
const CONNECT: H1Reject = Object.freeze({ status: 403, details: "connect_not_enabled" });
const UNDERSCORE: H1Reject = Object.freeze({ status: 400, details: "unexpected_underscore" });
const NON_RELATIVE_PATH: H1Reject = Object.freeze({ status: 404, details: "absolute_path_rejected" });
const UPGRADE_FAILED: H1Reject = Object.freeze({ status: 403, details: "upgrade_failed" });

/**
 * Checks one parsed request head against the connection manager's options; null when the request may run.
 * On the way it fixes up `stream.request` as Envoy does: the HTTP/1.0 default host, the Host header of an
 * absolute-form URL, the normalized path, and strips h2c upgrade headers. The checks that run after the
 * path are skipped on a redirect (the caller answers it without looking at the upgrade).
 */
export function checkRequestHead(
  o: HcmOptions,
  stats: HcmStats,
  head: RequestHead,
  stream: ActiveStream,
): H1Reject | null {
  const request = stream.request;
  const headers = request.headers;
  let reject: H1Reject | null = null;
  if (head.versionMinor === 0 && !o.acceptHttp10) reject = LOW_VERSION;
  else if (head.versionMinor === 0 && !request.authority) {
    if (o.defaultHostForHttp10) request.authority = o.defaultHostForHttp10;
    else reject = MISSING_HOST;
  } else if (head.absoluteHost && !o.allowAbsoluteUrl) {
    reject = ABSOLUTE_URL;
  } else if (head.method === "CONNECT") reject = CONNECT;
  if (!reject && head.absoluteHost) {
    headers.set("host", head.absoluteHost);
  }
  if (!reject && underscoreHeaders(o, stream)) reject = UNDERSCORE;
  if (!reject && request.path !== "*") {
    if (request.path[0] !== "/") {
      stats.downstream_rq_non_relative_path.inc();
      reject = NON_RELATIVE_PATH;
    } else {
      const p = preparePath(request.path, o.pathOptions);
      if (!p.ok) {
        if (p.status === 307 && p.location) return p;
        reject = p;
      } else if (p.changed) {
        request.path = p.path;
      }
    }
  }
  // upgrades: only the configured types pass; h2c upgrades are stripped as Envoy does
  if (!reject && head.upgrade) {
    if (head.upgrade === "h2c") {
      headers.remove("upgrade");
      headers.remove("http2-settings");
    } else if (!o.upgrades.has(head.upgrade)) {
      reject = UPGRADE_FAILED;
    }
  }
  return reject;
}

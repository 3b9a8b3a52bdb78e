/** The upstream request head, prepared once per request (attempts only change per-host details). */
import type { HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import type { H2Head } from "../../../../http/h2/head.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { RouteActionEntry, RouteEntry } from "../../../../http/routing/types.ts";

const REQUEST_HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
];

/** UpstreamHttpProtocol.Downstream (src/upstream/protocol_options.ts). */
const PROTOCOL_DOWNSTREAM = 3;

/**
 * Applies hop-by-hop removal, upgrade headers, path rewrites (x-envoy-original-path), host rewrites and the
 * route's request header mutations to the request headers; returns the upstream path.
 */
export function prepareRequestHeaders(cb: HttpFilterCallbacks, route: RouteEntry & RouteActionEntry): string {
  const req = cb.request;
  const h = req.headers;
  for (const name of REQUEST_HOP_BY_HOP) if (h.has(name)) h.remove(name);
  const te = h.get("te");
  if (te !== undefined && te !== "trailers") sanitizeTe(h, te);
  const upgrade = cb.upgradeType;
  if (upgrade) {
    h.addLower("connection", "upgrade");
    h.addLower("upgrade", upgrade);
  }
  let path = req.path;
  const rewritten = route.rewritePath(req);
  if (rewritten !== undefined) {
    h.set("x-envoy-original-path", path);
    cb.streamInfo.originalPath = path;
    path = rewritten;
  }
  if (route.hostRewriteLiteral !== undefined) h.set("host", route.hostRewriteLiteral);
  else if (!route.autoHostRewrite && h.get("host") !== req.authority) h.set("host", req.authority);
  if (!route.requestHeaders.empty) route.requestHeaders.apply(h, cb.routeContext());
  return path;
}

/** Keeps only the "trailers" token of TE (gRPC needs it end to end), as Envoy; drops TE otherwise. */
function sanitizeTe(h: HeaderMap, te: string): void {
  for (const t of te.split(",")) {
    if (t.trim().toLowerCase() === "trailers") {
      h.set("te", "trailers");
      return;
    }
  }
  h.remove("te");
}

/** True when a request to a cluster speaking `protocol` (not HTTP/1.1) goes over HTTP/2 (upgrades never do). */
export function useH2(protocol: number, cb: HttpFilterCallbacks): boolean {
  if (cb.upgradeType !== "") return false;
  return protocol !== PROTOCOL_DOWNSTREAM || cb.request.protocol === "HTTP/2";
}

/** The upstream HTTP/2 request head: Host becomes :authority; the codec drops connection-specific fields. */
export function h2RequestHead(req: HttpRequest, path: string): H2Head {
  return {
    method: req.method,
    scheme: req.scheme || "http",
    authority: req.headers.get("host") ?? req.authority,
    path,
    protocol: "",
    status: 0,
    headers: req.headers,
  };
}

/** Encodes request trailers as the HTTP/1.1 last chunk plus trailer block. */
export function encodeTrailersBlock(trailers: HeaderMap): Uint8Array {
  let s = "0\r\n";
  for (const [k, v] of trailers) s += k + ": " + v + "\r\n";
  return new TextEncoder().encode(s + "\r\n");
}

/** The upstream request head, prepared once per request (attempts only change per-host details). */
import type { HttpFilterCallbacks } from "../../../../http/filter.ts";
import type { RouteActionEntry, RouteEntry } from "../../../../http/routing/types.ts";

const REQUEST_HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
];

/**
 * Applies hop-by-hop removal, upgrade headers, path rewrites (x-envoy-original-path), host rewrites and the
 * route's request header mutations to the request headers; returns the upstream path.
 */
export function prepareRequestHeaders(cb: HttpFilterCallbacks, route: RouteEntry & RouteActionEntry): string {
  const req = cb.request;
  const h = req.headers;
  for (const name of REQUEST_HOP_BY_HOP) if (h.has(name)) h.remove(name);
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

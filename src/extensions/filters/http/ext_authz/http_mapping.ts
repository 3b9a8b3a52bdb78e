/**
 * The HTTP service's messages (Envoy's ext_authz RawHttpClientImpl): the authorization request built from a
 * check (original method, `path_prefix` + path, the allowed client headers, `headers_to_add`, the buffered body
 * with content-length always set) and the decision read from the answer (200 allows with the allowed upstream
 * and client headers, 5xx is an error, any other status denies with the service's body; headers named by
 * dynamic_metadata_from_headers become dynamic metadata either way).
 */
import { HeaderMap } from "../../../../http/headers.ts";
import { evaluateFormat, type FormatParts, parseFormat } from "../../../../http/routing/formatter.ts";
import type { RouteContext } from "../../../../http/routing/types.ts";
import {
  type AuthzResponse,
  type CheckInput,
  CheckStatus,
  emptyResponse,
  type HeaderKeyMatcher,
  MutationAction,
} from "./check.ts";

const HEADERS_TO_REMOVE = "x-envoy-auth-headers-to-remove";
/** Framing headers of the service's connection: never copied onto the client's response. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "content-length",
]);

/** The parts of `http_service` the client uses, compiled once per config. */
export interface HttpClientConfig {
  cluster: string;
  timeoutMs: number;
  pathPrefix: string;
  /** authorization_request.headers_to_add: name and parsed value format (OVERWRITE_IF_EXISTS_OR_ADD). */
  headersToAdd: [string, FormatParts][];
  /** allowed_upstream_headers: set on the request going upstream. */
  upstream: HeaderKeyMatcher | null;
  /** allowed_upstream_headers_to_append: added to the request going upstream. */
  upstreamAppend: HeaderKeyMatcher | null;
  /** allowed_client_headers (plus Envoy's defaults); null: every header but Host. */
  client: HeaderKeyMatcher | null;
  /** allowed_client_headers_on_success: added to the response to the client. */
  clientOnSuccess: HeaderKeyMatcher | null;
  /** dynamic_metadata_from_headers: service headers kept as dynamic metadata (string values). */
  dynamicMetadata: HeaderKeyMatcher | null;
}

/** Compiles the headers_to_add list (values may use header formatters such as %DOWNSTREAM_REMOTE_ADDRESS%). */
export function compileHeadersToAdd(
  list: readonly { key: string; value: string }[],
): [string, FormatParts][] {
  return list.map((h) => [h.key.toLowerCase(), parseFormat(h.value)]);
}

/** Builds the authorization request head and body of `c` (Envoy's RawHttpClientImpl::check). */
export function authzRequest(
  cfg: HttpClientConfig,
  c: CheckInput,
  routeCtx: RouteContext,
  now: () => number,
): { method: string; path: string; authority: string; headers: HeaderMap; body: Uint8Array | null } {
  const headers = new HeaderMap();
  const body = c.body !== null && c.body.length > 0 ? c.body : null;
  headers.addLower("content-length", body === null ? "0" : String(body.length));
  let method = c.method, path = c.path, authority = c.host;
  const names = c.headerNames, values = c.headerValues;
  for (let i = 0; i < names.length; i++) {
    const n = names[i];
    if (n === "content-length") continue;
    if (n.charCodeAt(0) === 58 /* : */) {
      if (n === ":path") path = cfg.pathPrefix + values[i];
      else if (n === ":method") method = values[i];
      else if (n === ":authority") authority = values[i];
      continue; // other pseudo-headers have no HTTP/1.1 form
    }
    headers.addLower(n, values[i]);
  }
  if (!names.includes(":path")) path = cfg.pathPrefix + c.path;
  for (const [name, parts] of cfg.headersToAdd) {
    const v = evaluateFormat(parts, headers, true, routeCtx, now);
    if (name === "host" || name === ":authority") authority = v;
    else headers.set(name, v);
  }
  return { method, path, authority, headers, body };
}

/** Maps the service's answer to a decision (Envoy's RawHttpClientImpl::toResponse). */
export function toAuthzResponse(
  cfg: HttpClientConfig,
  status: number,
  headers: HeaderMap,
  body: string,
): AuthzResponse {
  if (status >= 500 && status < 600) return emptyResponse(CheckStatus.Error);
  const ok = status === 200;
  const out = emptyResponse(ok ? CheckStatus.Ok : CheckStatus.Denied, status);
  if (ok) {
    for (const line of headers.getAll(HEADERS_TO_REMOVE)) {
      for (const n of line.split(",")) {
        const t = n.trim().toLowerCase();
        if (t !== "") out.headersToRemove.push(t);
      }
    }
  }
  const names = headers.names, values = headers.values;
  for (let i = 0; i < names.length; i++) {
    const n = names[i], v = values[i];
    if (n === HEADERS_TO_REMOVE) continue;
    if (ok) {
      if (cfg.upstream?.matches(n)) out.requestHeaders.push({ key: n, value: v, action: MutationAction.Set });
      if (cfg.upstreamAppend?.matches(n)) {
        out.requestHeaders.push({ key: n, value: v, action: MutationAction.Add });
      }
      if (cfg.clientOnSuccess?.matches(n)) {
        out.responseHeaders.push({ key: n, value: v, action: MutationAction.Add });
      }
    } else if (!HOP_BY_HOP.has(n) && (cfg.client === null ? n !== "host" : cfg.client.matches(n))) {
      out.responseHeaders.push({ key: n, value: v, action: MutationAction.Set });
    }
    // OK or denied alike, as Envoy's SuccessResponse (the last line of a repeated header wins)
    if (cfg.dynamicMetadata?.matches(n)) (out.dynamicMetadata ??= {})[n] = v;
  }
  if (!ok) out.body = body;
  return out;
}

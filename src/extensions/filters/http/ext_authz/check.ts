/**
 * What the ext_authz filter sends and gets back, independent of the transport: the check's input (Envoy's
 * CheckRequestUtils::createHttpCheck: request attributes, headers filtered by allowed/disallowed matchers, the
 * buffered body) and the decision (Envoy's ExtAuthz::Response: OK with header/query mutations, Denied with a
 * local reply, or Error).
 */
import type { HeaderMap } from "../../../../http/headers.ts";
import type { StringMatch } from "../../../../http/routing/matchers.ts";

/** One side of the connection (AttributeContext.Peer). */
export interface CheckPeer {
  /** IP address ("" when unknown). */
  address: string;
  port: number;
  /** x-envoy-downstream-service-cluster for the source; "" for the destination. */
  service: string;
  /** URI SAN, else DNS SAN, else subject of the certificate ("" without TLS). */
  principal: string;
  /** URL-encoded PEM of the peer certificate (include_peer_certificate; source only). */
  certificate: string;
}

/** Everything a check carries (AttributeContext of the CheckRequest). */
export interface CheckInput {
  source: CheckPeer;
  destination: CheckPeer;
  /** Request start, ms since epoch. */
  startTimeMs: number;
  /** AttributeContext.HttpRequest.id: the stream id. */
  id: string;
  method: string;
  /** :path with the query. */
  path: string;
  /** :authority. */
  host: string;
  scheme: string;
  /** Request body bytes received so far (HttpRequest.size). */
  size: number;
  /** "HTTP/1.1", "HTTP/2", ... */
  protocol: string;
  /** Header names (pseudo-headers included) after the allowed/disallowed matchers; lowercase. */
  headerNames: string[];
  /** Values parallel to headerNames (one per name, joined with "," unless `rawHeaders`). */
  headerValues: string[];
  /** encode_raw_headers: HttpRequest.header_map with repeated names instead of the headers map. */
  rawHeaders: boolean;
  /** The buffered body (at most max_request_bytes), null when not buffering. */
  body: Uint8Array | null;
  /** pack_as_bytes: body in raw_body instead of body. */
  packAsBytes: boolean;
  /** check_settings.context_extensions of the route, null when none. */
  contextExtensions: Readonly<Record<string, string>> | null;
  /** include_tls_session: TLSSession.sni (null when not included). */
  sni: string | null;
  /** metadata_context_namespaces found in the request's dynamic metadata (filter_metadata), null when none. */
  metadataContext: Readonly<Record<string, Record<string, unknown>>> | null;
}

/** The outcome class of a check (Envoy's CheckStatus). */
export const CheckStatus = { Ok: 0, Denied: 1, Error: 2 } as const;
/** One of CheckStatus. */
export type CheckStatus = typeof CheckStatus[keyof typeof CheckStatus];

/** How a header mutation applies (Envoy's HeaderMutationAction). */
export const MutationAction = {
  /** Replace every value (OVERWRITE_IF_EXISTS_OR_ADD; deprecated append: false). */
  Set: 0,
  /** Add one more line (APPEND_IF_EXISTS_OR_ADD; allowed_upstream_headers_to_append). */
  Add: 1,
  /** Append ",value" to an existing header, nothing when absent (deprecated append: true on request headers). */
  Append: 2,
  AddIfAbsent: 3,
  OverwriteIfExists: 4,
} as const;
/** One of MutationAction. */
export type MutationAction = typeof MutationAction[keyof typeof MutationAction];

/** One header change asked for by the authorization service. */
export interface HeaderMutation {
  key: string;
  value: string;
  action: MutationAction;
}

/** The decision of a check. */
export interface AuthzResponse {
  status: CheckStatus;
  /** Denied (and Error with an error_response): the status of the local reply; 0 means the default. */
  statusCode: number;
  /** Denied: the local reply body. */
  body: string;
  /** OK: changes to the request headers going upstream. */
  requestHeaders: HeaderMutation[];
  /** OK: request headers to remove. */
  headersToRemove: string[];
  /** OK: headers for the response to the client. Denied/Error: headers of the local reply. */
  responseHeaders: HeaderMutation[];
  /** OK: query parameters to set. */
  queryToSet: [string, string][];
  /** OK: query parameters to remove. */
  queryToRemove: string[];
  /** A HeaderValueOption had an append_action this build does not know. */
  sawInvalidAppendAction: boolean;
  /** Dynamic metadata for the `envoy.filters.http.ext_authz` namespace, null when the service sent none. */
  dynamicMetadata: Record<string, unknown> | null;
}

/** A fresh response of `status` with nothing in it. */
export function emptyResponse(status: CheckStatus, statusCode = 0): AuthzResponse {
  return {
    status,
    statusCode,
    body: "",
    requestHeaders: [],
    headersToRemove: [],
    responseHeaders: [],
    queryToSet: [],
    queryToRemove: [],
    sawInvalidAppendAction: false,
    dynamicMetadata: null,
  };
}

/** A check in flight. */
export interface AuthzCall {
  /** The decision; never rejects (failures resolve as CheckStatus.Error). */
  readonly result: Promise<AuthzResponse>;
  /** Gives the call up (the stream went away); `result` then resolves as an error nobody reads. */
  cancel(): void;
}

/** A client of the authorization service (one per filter config; keeps its connections). */
export interface AuthzClient {
  /** Starts one check; `metadata`: request headers of the call (gRPC initial metadata, a span's context). */
  check(input: CheckInput, metadata?: HeaderMap | null): AuthzCall;
  /** Closes connections (snapshot retired). */
  close(): void;
}

/** A compiled ListStringMatcher over header names (lowercase). */
export class HeaderKeyMatcher {
  constructor(readonly matchers: readonly StringMatch[]) {}
  /** True when some pattern matches `key`. */
  matches(key: string): boolean {
    const m = this.matchers;
    for (let i = 0; i < m.length; i++) if (m[i].match(key)) return true;
    return false;
  }
}

/** "1.2.3.4:80" -> ["1.2.3.4", 80]; "[::1]:80" -> ["::1", 80]; anything else -> [text, 0]. */
export function splitAddress(addr: string): [string, number] {
  if (addr === "") return ["", 0];
  if (addr.charCodeAt(0) === 91 /* [ */) {
    const end = addr.indexOf("]");
    if (end > 0) return [addr.slice(1, end), Number(addr.slice(end + 2)) || 0];
    return [addr, 0];
  }
  const c = addr.lastIndexOf(":");
  if (c < 0 || addr.indexOf(":") !== c) return [addr, 0];
  return [addr.slice(0, c), Number(addr.slice(c + 1)) || 0];
}

/**
 * `bytes` with every byte that is not part of a valid UTF-8 sequence replaced by "!" (Envoy's
 * MessageUtil::sanitizeUtf8String); `bytes` itself when it is valid.
 */
export function sanitizeUtf8(bytes: Uint8Array): Uint8Array {
  let out: Uint8Array | null = null;
  let i = 0;
  while (i < bytes.length) {
    const n = utf8SequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out ??= bytes.slice();
    out[i++] = 0x21;
  }
  return out ?? bytes;
}

/** Length of the valid UTF-8 sequence at `i`, 0 when the byte there does not start one. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0) return 0;
  const min = n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000;
  if (i + n > b.length) return 0;
  let cp = c & (0x7f >> n);
  for (let k = 1; k < n; k++) {
    const x = b[i + k];
    if ((x & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (x & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

const utf8 = new TextDecoder();

/**
 * A header value as Envoy puts it in the CheckRequest: nuncio keeps header bytes as latin1 strings, so a value
 * with bytes over 0x7f is re-read as UTF-8, invalid bytes becoming "!".
 */
export function sanitizeHeaderValue(v: string): string {
  let ascii = true;
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return v;
  return utf8.decode(sanitizeUtf8(latin1Bytes(v)));
}

/** The bytes of a latin1 string (chars above 0xff, which header strings never hold, are cut to 8 bits). */
export function latin1Bytes(v: string): Uint8Array {
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v.charCodeAt(i);
  return out;
}

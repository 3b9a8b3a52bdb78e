/**
 * Message heads crossing the codec API, their validation as RFC 9113 §8.2-8.3 requires (lowercase names,
 * no connection-specific fields, TE only "trailers", pseudo-headers first and well-formed) and their
 * HPACK encoding.
 */
import { TOKEN } from "../h1/chars.ts";
import { HeaderMap } from "../headers.ts";
import type { OutBuf } from "./frame.ts";
import type { HpackEncoder } from "./hpack.ts";

/** A request or response head. Requests use method..protocol (status 0); responses use status. */
export interface H2Head {
  /** :method ("" in responses). */
  method: string;
  /** :scheme ("" when absent, as for CONNECT). */
  scheme: string;
  /** :authority ("" when absent). */
  authority: string;
  /** :path ("" when absent, as for CONNECT). */
  path: string;
  /** :protocol of an extended CONNECT (RFC 8441), else "". */
  protocol: string;
  /** :status of a response; 0 in requests. */
  status: number;
  /** Regular fields, lowercase names, in order (cookies merged with "; " in requests). */
  headers: HeaderMap;
}

/** Builds a request head. */
export function requestHead(
  method: string,
  path: string,
  authority: string,
  headers: HeaderMap = new HeaderMap(),
  scheme = "http",
): H2Head {
  return { method, scheme, authority, path, protocol: "", status: 0, headers };
}

/** Builds a response head. */
export function responseHead(status: number, headers: HeaderMap = new HeaderMap()): H2Head {
  return { method: "", scheme: "", authority: "", path: "", protocol: "", status, headers };
}

/** Removes the first `k` entries of `a` in place (splice would allocate the removed ones). */
function dropFront(a: string[], k: number): void {
  const n = a.length - k;
  for (let i = 0; i < n; i++) a[i] = a[i + k];
  a.length = n;
}

/** Fields that must not appear in HTTP/2 (RFC 9113 §8.2.2); dropped when encoding, malformed when received. */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

const validNames = new Set<string>();

function nameOk(name: string): boolean {
  if (validNames.has(name)) return true;
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 255 || TOKEN[c] !== 1) return false;
  }
  if (validNames.size < 4096) validNames.add(name);
  return true;
}

function valueOk(v: string): boolean {
  const n = v.length;
  if (n === 0) return true;
  let c = v.charCodeAt(0);
  if (c === 32 || c === 9) return false;
  c = v.charCodeAt(n - 1);
  if (c === 32 || c === 9) return false;
  for (let i = 0; i < n; i++) {
    c = v.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  return true;
}

const STATUS_TEXT: string[] = [];
for (let s = 0; s < 1000; s++) STATUS_TEXT.push(String(s).padStart(3, "0"));

/** Validates decoded head blocks; holds the detail of the last failure and the content-length. */
export class HeadValidator {
  /** Why the last validation failed (Envoy-style detail). */
  error = "";
  /** content-length of the last validated head, -1 when absent. */
  contentLength = -1;

  /**
   * Turns a decoded request block into a head (pseudo-headers removed from `map`); null when malformed.
   * `allowConnect` permits the extended CONNECT :protocol pseudo-header.
   */
  request(map: HeaderMap, allowConnect: boolean): H2Head | null {
    const names = map.names;
    const values = map.values;
    let method = "", scheme = "", authority = "", path = "", protocol = "";
    let k = 0;
    let seen = 0;
    for (; k < names.length; k++) {
      const n = names[k];
      if (n.charCodeAt(0) !== 58) break;
      let bit: number;
      if (n === ":method") (bit = 1), method = values[k];
      else if (n === ":path") (bit = 2), path = values[k];
      else if (n === ":scheme") (bit = 4), scheme = values[k];
      else if (n === ":authority") (bit = 8), authority = values[k];
      else if (n === ":protocol" && allowConnect) (bit = 16), protocol = values[k];
      else return this.#fail("http2.invalid_pseudo_header");
      if (seen & bit) return this.#fail("http2.duplicate_pseudo_header");
      seen |= bit;
      if (!valueOk(values[k])) return this.#fail("http2.invalid_header_value");
    }
    if (method === "") return this.#fail("http2.missing_method");
    if (method === "CONNECT" && protocol === "") {
      if (authority === "" || (seen & 6) !== 0) return this.#fail("http2.invalid_connect");
    } else {
      if (scheme === "" || path === "") return this.#fail("http2.missing_path_or_scheme");
      if (protocol !== "" && method !== "CONNECT") return this.#fail("http2.invalid_pseudo_header");
    }
    if (k > 0) {
      dropFront(names, k);
      dropFront(values, k);
    }
    if (!this.#regular(map, true)) return null;
    return { method, scheme, authority, path, protocol, status: 0, headers: map };
  }

  /** Turns a decoded response block into a head; null when malformed. */
  response(map: HeaderMap): H2Head | null {
    const names = map.names;
    if (names.length === 0 || names[0] !== ":status") return this.#fail("http2.missing_status");
    const v = map.values[0];
    const status = v.length === 3 ? Number(v) : NaN;
    if (!(status >= 100 && status <= 999) || status === 101) return this.#fail("http2.invalid_status");
    names.shift();
    map.values.shift();
    if (!this.#regular(map, false)) return null;
    return { method: "", scheme: "", authority: "", path: "", protocol: "", status, headers: map };
  }

  /** Checks a trailer block (no pseudo-headers); false when malformed. */
  trailers(map: HeaderMap): boolean {
    const cl = this.contentLength;
    const ok = this.#regular(map, false);
    this.contentLength = cl;
    return ok;
  }

  #regular(map: HeaderMap, request: boolean): boolean {
    const names = map.names;
    const values = map.values;
    let cookies = 0;
    this.contentLength = -1;
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      if (!nameOk(n)) {
        return this.#bad(
          n.charCodeAt(0) === 58 ? "http2.invalid_pseudo_header" : "http2.invalid_header_name",
        );
      }
      const v = values[i];
      if (!valueOk(v)) return this.#bad("http2.invalid_header_value");
      if (CONNECTION_SPECIFIC.has(n)) return this.#bad("http2.connection_specific_header");
      if (n === "te" && v !== "trailers") return this.#bad("http2.invalid_te");
      if (n === "content-length") {
        const cl = parseLength(v);
        if (cl < 0 || (this.contentLength >= 0 && cl !== this.contentLength)) {
          return this.#bad("http2.invalid_content_length");
        }
        this.contentLength = cl;
      } else if (n === "cookie") cookies++;
    }
    if (request && cookies > 1) mergeCookies(map);
    return true;
  }

  #bad(detail: string): false {
    this.error = detail;
    return false;
  }

  #fail(detail: string): null {
    this.error = detail;
    return null;
  }
}

function parseLength(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

function mergeCookies(map: HeaderMap): void {
  const all = map.getAll("cookie").join("; ");
  map.remove("cookie");
  map.addLower("cookie", all);
}

function regularFields(enc: HpackEncoder, out: OutBuf, h: HeaderMap): void {
  const names = h.names;
  const values = h.values;
  for (let i = 0; i < names.length; i++) {
    const n = names[i];
    if (CONNECTION_SPECIFIC.has(n) || n === "host") continue;
    if (n === "te" && values[i] !== "trailers") continue;
    enc.field(out, n, values[i]);
  }
}

/** Writes a request head's HPACK block (host becomes :authority when that is empty). */
export function encodeRequestHead(enc: HpackEncoder, out: OutBuf, h: H2Head): void {
  enc.begin(out);
  enc.field(out, ":method", h.method);
  if (h.method !== "CONNECT" || h.protocol !== "") {
    enc.field(out, ":scheme", h.scheme || "http");
    enc.field(out, ":path", h.path || "/");
  }
  const authority = h.authority || h.headers.get("host") || "";
  if (authority !== "") enc.field(out, ":authority", authority);
  if (h.protocol !== "") enc.field(out, ":protocol", h.protocol);
  regularFields(enc, out, h.headers);
}

/** Writes a response head's HPACK block. */
export function encodeResponseHead(enc: HpackEncoder, out: OutBuf, status: number, h: HeaderMap): void {
  enc.begin(out);
  enc.field(out, ":status", STATUS_TEXT[status] ?? String(status));
  regularFields(enc, out, h);
}

/** Writes a trailer block. */
export function encodeTrailers(enc: HpackEncoder, out: OutBuf, h: HeaderMap): void {
  enc.begin(out);
  regularFields(enc, out, h);
}

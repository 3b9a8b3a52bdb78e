/**
 * Applying an authorization decision to the request and response (Envoy's ext_authz Filter::onComplete and
 * encodeHeaders): header mutations by action, header removals, query parameter changes (Envoy's
 * QueryParamsMulti: keys sorted, the query rebuilt), and the validity checks of `validate_mutations`.
 */
import type { HttpRequest } from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { type HeaderMutation, MutationAction } from "./check.ts";

/** RFC 9110 token characters (a header name). */
function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      "!#$%&'*+-.^_`|~".includes(s[i]);
    if (!ok) return false;
  }
  return true;
}

/** A header name Envoy's HeaderUtility::headerNameIsValid accepts (a token; pseudo-headers start with ":"). */
export function headerNameIsValid(name: string): boolean {
  return name.charCodeAt(0) === 58 ? isToken(name.slice(1)) : isToken(name);
}

/** A header value without NUL, CR, LF or other control characters but HTAB. */
export function headerValueIsValid(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** Envoy's PercentEncoding::queryParameterIsUrlEncoded: only unreserved/sub-delim characters and %XX escapes. */
export function queryParameterIsUrlEncoded(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const c = s.charCodeAt(i);
    if (ch === "%") {
      if (!HEX.test(s.slice(i + 1, i + 3))) return false;
      i += 2;
      continue;
    }
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      "-._~!$'()*+,;:@/?".includes(ch);
    if (!ok) return false;
  }
  return true;
}

/** Envoy's HeaderUtility::isRemovableHeader: not a pseudo-header and not Host. */
export function isRemovableHeader(name: string): boolean {
  return name.length > 0 && name.charCodeAt(0) !== 58 && name !== "host";
}

/** Appends ",value" to the first `name` line (Envoy's appendCopy); nothing when absent. */
function appendToFirst(headers: HeaderMap, name: string, value: string): void {
  const i = headers.names.indexOf(name);
  if (i < 0) return;
  headers.values[i] = headers.values[i] === "" ? value : `${headers.values[i]},${value}`;
}

/** Sets a request header; :path, :method and :authority (and Host) go to the request's own fields. */
function setRequestHeader(req: HttpRequest, key: string, value: string): void {
  if (key.charCodeAt(0) === 58 /* : */) {
    if (key === ":path") req.path = value;
    else if (key === ":method") req.method = value;
    else if (key === ":authority") req.authority = value;
    return; // :scheme and unknown pseudo-headers: nothing to set on an HTTP/1.1 or HTTP/2 request here
  }
  if (key === "host") {
    req.authority = value;
    if (req.headers.has("host")) req.headers.set("host", value);
    return;
  }
  req.headers.set(key, value);
}

function hasRequestHeader(req: HttpRequest, key: string): boolean {
  if (key === ":path" || key === ":method" || key === ":authority") return true;
  if (key === "host") return req.authority !== "";
  return req.headers.has(key);
}

/** Applies one mutation of an OK decision to the request going upstream. */
export function applyRequestMutation(req: HttpRequest, m: HeaderMutation): void {
  const { key, value } = m;
  switch (m.action) {
    case MutationAction.Set:
      setRequestHeader(req, key, value);
      return;
    case MutationAction.Add:
      if (key.charCodeAt(0) === 58 || key === "host") setRequestHeader(req, key, value);
      else req.headers.add(key, value);
      return;
    case MutationAction.Append:
      if (key.charCodeAt(0) !== 58) appendToFirst(req.headers, key, value);
      return;
    case MutationAction.AddIfAbsent:
      if (!hasRequestHeader(req, key)) setRequestHeader(req, key, value);
      return;
    case MutationAction.OverwriteIfExists:
      if (hasRequestHeader(req, key)) setRequestHeader(req, key, value);
  }
}

/** Applies response mutations (headers to the client on OK; the local reply's on deny). */
export function applyResponseMutations(
  headers: HeaderMap,
  list: readonly HeaderMutation[],
  localReply: boolean,
): void {
  if (localReply) {
    // as Envoy's local reply hook: first every header the service sets is removed, then all are added (so
    // several Set-Cookie lines survive)
    for (const m of list) if (m.action === MutationAction.Set) headers.remove(m.key);
    for (const m of list) {
      if (m.action === MutationAction.Set) headers.add(m.key, m.value);
      else applyOne(headers, m);
    }
    return;
  }
  for (const m of list) applyOne(headers, m);
}

function applyOne(headers: HeaderMap, m: HeaderMutation): void {
  switch (m.action) {
    case MutationAction.Set:
      headers.set(m.key, m.value);
      return;
    case MutationAction.Add:
    case MutationAction.Append:
      headers.add(m.key, m.value);
      return;
    case MutationAction.AddIfAbsent:
      if (!headers.has(m.key)) headers.add(m.key, m.value);
      return;
    case MutationAction.OverwriteIfExists:
      if (headers.has(m.key)) headers.set(m.key, m.value);
  }
}

/**
 * `path` with its query changed: `set` overwrites (one value per key), `remove` drops keys; the query is rebuilt
 * with keys in sorted order as Envoy's QueryParamsMulti does, and dropped when no parameter is left.
 */
export function rewriteQuery(
  path: string,
  set: readonly [string, string][],
  remove: readonly string[],
): string {
  const q = path.indexOf("?");
  const base = q < 0 ? path : path.slice(0, q);
  const params = new Map<string, string[]>();
  if (q >= 0) {
    for (const p of path.slice(q + 1).split("&")) {
      if (p === "") continue;
      const eq = p.indexOf("=");
      const k = eq < 0 ? p : p.slice(0, eq);
      const v = eq < 0 ? "" : p.slice(eq + 1);
      const vs = params.get(k);
      if (vs) vs.push(v);
      else params.set(k, [v]);
    }
  }
  for (const [k, v] of set) params.set(k, [v]);
  for (const k of remove) params.delete(k);
  if (params.size === 0) return base;
  const keys = [...params.keys()].sort(byteOrder);
  let out = base;
  let delim = "?";
  for (const k of keys) {
    for (const v of params.get(k)!) {
      out += `${delim}${k}=${v}`;
      delim = "&";
    }
  }
  return out;
}

/** std::string ordering (bytewise; query strings are ASCII). */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Request path preparation as Envoy's connection manager does it before routing: reject fragments,
 * handle escaped slashes (path_with_escaped_slashes_action), normalize per RFC 3986 (normalize_path) and
 * merge slashes (merge_slashes). The query string is never touched.
 */

/** Envoy's path_with_escaped_slashes_action values (IMPLEMENTATION_SPECIFIC_DEFAULT = KEEP_UNCHANGED). */
export type EscapedSlashesAction =
  | "IMPLEMENTATION_SPECIFIC_DEFAULT"
  | "KEEP_UNCHANGED"
  | "REJECT_REQUEST"
  | "UNESCAPE_AND_REDIRECT"
  | "UNESCAPE_AND_FORWARD";

/** Path options, taken from the connection manager config once. */
export interface PathOptions {
  /** normalize_path: RFC 3986 dot-segment removal, unreserved percent-decoding, uppercase hex escapes. */
  normalize: boolean;
  /** merge_slashes: collapse runs of "/" into one. */
  mergeSlashes: boolean;
  /** path_with_escaped_slashes_action for %2F, %2f, %5C, %5c. */
  escapedSlashes: EscapedSlashesAction;
}

/** A prepared path (ok) or a local reply to send instead (400 reject, 307 redirect to `location`). */
export type PreparedPath =
  | { ok: true; path: string; changed: boolean }
  | { ok: false; status: 400 | 307; details: string; location?: string };

/** Shared result for the common path (read it before the next call; the connection manager is synchronous). */
const UNCHANGED: { ok: true; path: string; changed: boolean } = { ok: true, path: "", changed: false };

const FRAGMENT_REJECT: PreparedPath = Object.freeze({ ok: false, status: 400, details: "http1.invalid_url" });
const NORMALIZATION_REJECT: PreparedPath = Object.freeze({
  ok: false,
  status: 400,
  details: "path_normalization_failed",
});

const HEX = "0123456789ABCDEF";

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 ||
    c === 95 || c === 126;
}

/**
 * Prepares a request path (origin-form, with query) for routing. Returns the input string itself
 * (changed: false, shared result object) when nothing applies, after one scan. A "#" anywhere is
 * rejected with 400 (Envoy's default since 1.19). Targets not starting with "/" ("*", "") pass as is.
 */
export function preparePath(rawPath: string, opts: PathOptions): PreparedPath {
  const len = rawPath.length;
  let q = len;
  let pct = false;
  let dots = false;
  let backslash = false;
  let doubleSlash = false;
  let prev = 0;
  for (let i = 0; i < len; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 63) { // '?'
      q = i;
      break;
    }
    if (c === 35) return FRAGMENT_REJECT; // '#'
    if (c === 37) pct = true;
    else if (c === 92) backslash = true;
    else if (c === 47) {
      if (prev === 47) doubleSlash = true;
    } else if (c === 46 && prev === 47) {
      const n = i + 1 < len ? rawPath.charCodeAt(i + 1) : 47;
      if (n === 47 || n === 63 || n === 35) dots = true;
      else if (n === 46) {
        const n2 = i + 2 < len ? rawPath.charCodeAt(i + 2) : 47;
        if (n2 === 47 || n2 === 63 || n2 === 35) dots = true;
      }
    }
    prev = c;
  }
  if (q < len && rawPath.indexOf("#", q) >= 0) return FRAGMENT_REJECT;
  if (len === 0 || rawPath.charCodeAt(0) !== 47) return unchanged(rawPath);
  const action = opts.escapedSlashes;
  const handleEscapes = action !== "KEEP_UNCHANGED" && action !== "IMPLEMENTATION_SPECIFIC_DEFAULT";
  const slow = (opts.normalize && (pct || dots || backslash)) || (opts.mergeSlashes && doubleSlash) ||
    (handleEscapes && pct);
  if (!slow) return unchanged(rawPath);

  let path = q === len ? rawPath : rawPath.slice(0, q);
  let unescaped = false;
  if (handleEscapes && pct) {
    const replaced = path.replace(
      ESCAPED_SLASH_RE,
      (m) => (m.charCodeAt(2) === 70 || m.charCodeAt(2) === 102 ? "/" : "\\"),
    );
    if (replaced !== path) {
      if (action === "REJECT_REQUEST") return NORMALIZATION_REJECT;
      unescaped = true;
      path = replaced;
    }
  }
  if (opts.normalize) path = normalizePath(path);
  if (opts.mergeSlashes) path = mergeSlashes(path);
  const result = q === len ? path : path + rawPath.slice(q);
  if (unescaped && action === "UNESCAPE_AND_REDIRECT") {
    return { ok: false, status: 307, details: "path_escaped_slashes_redirect", location: result };
  }
  return { ok: true, path: result, changed: result !== rawPath };
}

const ESCAPED_SLASH_RE = /%(?:2f|5c)/gi;

function unchanged(path: string): PreparedPath {
  UNCHANGED.path = path;
  return UNCHANGED;
}

/**
 * RFC 3986 normalization of a path (no query): percent-decodes unreserved characters, uppercases the hex
 * of other escapes, turns "\" into "/", then removes dot segments ("/.." at the root stays at the root).
 */
export function normalizePath(path: string): string {
  let s = path;
  if (s.indexOf("%") >= 0 || s.indexOf("\\") >= 0) {
    let out = "";
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 92) {
        out += "/";
      } else if (
        c === 37 && i + 2 < s.length && hexVal(s.charCodeAt(i + 1)) >= 0 && hexVal(s.charCodeAt(i + 2)) >= 0
      ) {
        const v = hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2));
        out += isUnreserved(v) ? String.fromCharCode(v) : "%" + HEX[v >> 4] + HEX[v & 15];
        i += 2;
      } else {
        out += s[i];
      }
    }
    s = out;
  }
  return removeDotSegments(s);
}

/** RFC 3986 5.2.4 remove_dot_segments for an absolute path; ".." above the root stays at the root. */
export function removeDotSegments(path: string): string {
  if (path.indexOf("/.") < 0) return path;
  const segs = path.split("/");
  const out: string[] = [];
  const last = segs.length - 1;
  for (let i = 1; i <= last; i++) {
    const seg = segs[i];
    if (seg === ".") {
      if (i === last) out.push("");
    } else if (seg === "..") {
      out.pop();
      if (i === last) out.push("");
    } else {
      out.push(seg);
    }
  }
  return "/" + out.join("/");
}

/** Collapses runs of "/" into one (Envoy merge_slashes). */
export function mergeSlashes(path: string): string {
  if (path.indexOf("//") < 0) return path;
  return path.replace(MULTI_SLASH_RE, "/");
}

const MULTI_SLASH_RE = /\/{2,}/g;

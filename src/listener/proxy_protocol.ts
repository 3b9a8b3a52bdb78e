/**
 * The envoy.filters.listener.proxy_protocol listener filter, as Envoy's proxy_protocol.cc: reads a PROXY
 * protocol v1 (text) or v2 (binary) header before anything else on the connection and makes its source the
 * connection's remote address and its destination the local one (LOCAL commands, v1 UNKNOWN and AF_UNSPEC keep
 * the socket's); the bytes after the header are replayed to the filter chain. Without a header the connection
 * is closed, unless allow_requests_without_proxy_protocol lets through a connection whose first bytes cannot
 * start one. Stats as Envoy: `proxy_proto.[<stat_prefix>.]not_found_allowed|not_found_disallowed`,
 * `proxy_proto.[<stat_prefix>.]versions.v1|v2.found|disallowed|error` and the legacy
 * `downstream_cx_proxy_proto_error` (root scope, no prefix); a header not complete within the
 * listener_filters_timeout counts the listener's `downstream_pre_cx_timeout` and closes the connection.
 * TLVs are checked for framing and skipped (`rules` and `pass_through_tlvs` are not supported: nothing in nuncio
 * reads dynamic metadata or sends PROXY headers upstream).
 */
import { z } from "zod/mini";
import { isIPv4, isIPv6 } from "../common/ip.ts";
import { envoyEnum, notSupported } from "../config/schema_util.ts";
import type { Counter, Scope } from "../stats/store.ts";
import { PrefixedConn } from "../transport/prefixed_conn.ts";

/** The filter's @type. */
export const PROXY_PROTOCOL_TYPE =
  "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol";
/** The filter's name. */
export const PROXY_PROTOCOL_NAME = "envoy.filters.listener.proxy_protocol";

/** envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol. */
export const proxyProtocolSchema = z.strictObject({
  rules: z._default(
    z.array(z.unknown()).check(z.maxLength(0, {
      error:
        "Field not supported by nuncio: TLVs are not stored as dynamic metadata (nothing in nuncio reads it)",
    })),
    [],
  ),
  allow_requests_without_proxy_protocol: z._default(z.boolean(), false),
  pass_through_tlvs: notSupported,
  disallowed_versions: z._default(z.array(envoyEnum(["V1", "V2"])), []).check(
    z.refine((v) => !(v.includes("V1") && v.includes("V2")), {
      error: "Proxy Protocol filter is misconfigured: all proxy protocol versions are disallowed.",
    }),
  ),
  stat_prefix: z._default(z.string(), ""),
  // where TLVs matched by `rules` go; with no rules nothing is stored either way (as in Envoy)
  tlv_location: z._default(envoyEnum(["DYNAMIC_METADATA", "FILTER_STATE"]), "DYNAMIC_METADATA"),
});

/** The parsed ProxyProtocol config. */
export type ProxyProtocolConfig = z.infer<typeof proxyProtocolSchema>;

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_SIGNATURE = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
const V2_HEADER_LEN = 16;
/** Longest v1 line Envoy accepts before giving up on finding its CRLF. */
const MAX_V1_LEN = 107;
const PORT_RE = /^[0-9]{1,5}$/;

/** What a parse of the bytes read so far decided. */
export type ParseResult =
  | { kind: "more"; need: number }
  /** version 0: no header found (an error unless allowed) */
  | { kind: "error"; version: 0 | 1 | 2 }
  | { kind: "denied"; version: 1 | 2 }
  | {
    kind: "done";
    /** 0: no header (allowed through); 1 or 2. */
    version: 0 | 1 | 2;
    /** Header bytes to drop. */
    length: number;
    /** The source and destination from the header; absent for LOCAL, UNKNOWN or no header. */
    remote?: Deno.NetAddr;
    local?: Deno.NetAddr;
  };

function startsWith(buf: Uint8Array, sig: readonly number[]): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/** The options the parser needs. */
export interface ParseOptions {
  allowWithout: boolean;
  allowV1: boolean;
  allowV2: boolean;
}

/** Parses the first bytes of a connection (call again with more bytes on "more"); pure. */
export function parseProxyHeader(buf: Uint8Array, o: ParseOptions): ParseResult {
  const len = buf.length;
  if (o.allowWithout) {
    const v2 = o.allowV2 && startsWith(buf, V2_SIGNATURE);
    const v1 = o.allowV1 && startsWith(buf, V1_SIGNATURE);
    if (!v1 && !v2) return { kind: "done", version: 0, length: 0 };
  }
  let v2 = false;
  if (len >= V2_HEADER_LEN) {
    if (startsWith(buf, V2_SIGNATURE)) v2 = true;
    else if (!startsWith(buf, V1_SIGNATURE)) return { kind: "error", version: 0 };
  }
  if (v2) return parseV2(buf, o);
  // v1: the line ends at the first CRLF (a CRLF at index 0-1 may still be the v2 signature: wait)
  let end = -1;
  for (let i = 1; i < len; i++) {
    if (buf[i] === 0x0a && buf[i - 1] === 0x0d) {
      if (i === 1) return { kind: "more", need: V2_HEADER_LEN };
      end = i + 1;
      break;
    }
  }
  if (end < 0) return len > MAX_V1_LEN ? { kind: "error", version: 0 } : { kind: "more", need: len + 1 };
  if (end > MAX_V1_LEN) return { kind: "error", version: 1 };
  if (!o.allowV1) return { kind: "denied", version: 1 };
  return parseV1(new TextDecoder().decode(buf.subarray(0, end)), end);
}

function parseV1(line: string, length: number): ParseResult {
  const err: ParseResult = { kind: "error", version: 1 };
  const parts = line.trimEnd().split(" ");
  if (parts.length < 2 || parts[0] !== "PROXY") return err;
  if (parts[1] === "UNKNOWN") return { kind: "done", version: 1, length };
  if (parts.length !== 6) return err;
  const six = parts[1] === "TCP6";
  if (!six && parts[1] !== "TCP4") return err;
  const remote = v1Address(parts[2], parts[4], six);
  const local = v1Address(parts[3], parts[5], six);
  if (remote === null || local === null || !isUnicast(remote.hostname) || !isUnicast(local.hostname)) {
    return err;
  }
  return { kind: "done", version: 1, length, remote, local };
}

function v1Address(ip: string, port: string, six: boolean): Deno.NetAddr | null {
  if (!PORT_RE.test(port) || Number(port) > 65535) return null;
  if (six) {
    if (ip.includes("%") || !isIPv6(ip)) return null;
    return { transport: "tcp", hostname: formatIPv6(ipv6Bytes(ip)), port: Number(port) };
  }
  return isIPv4(ip) ? { transport: "tcp", hostname: ip, port: Number(port) } : null;
}

function parseV2(buf: Uint8Array, o: ParseOptions): ParseResult {
  if (!o.allowV2) return { kind: "denied", version: 2 };
  const err: ParseResult = { kind: "error", version: 2 };
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return err;
  const cmd = verCmd & 0xf;
  const fam = buf[13] >> 4;
  const addrLen = cmd === 0 ? 0 : fam === 1 ? 12 : fam === 2 ? 36 : -1;
  if (addrLen < 0) return err;
  const hdrLen = (buf[14] << 8) | buf[15];
  if (hdrLen < addrLen) return err;
  const whole = V2_HEADER_LEN + hdrLen;
  if (buf.length < whole) return { kind: "more", need: whole };
  if (cmd === 0) return { kind: "done", version: 2, length: whole }; // LOCAL: TLVs ignored
  const transport = buf[13] & 0xf;
  if (cmd !== 1 || (transport !== 1 && transport !== 2)) return err;
  let remote: Deno.NetAddr, local: Deno.NetAddr;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  if (fam === 1) {
    remote = { transport: "tcp", hostname: buf.subarray(16, 20).join("."), port: v.getUint16(24) };
    local = { transport: "tcp", hostname: buf.subarray(20, 24).join("."), port: v.getUint16(26) };
  } else {
    remote = { transport: "tcp", hostname: formatIPv6(buf.subarray(16, 32)), port: v.getUint16(48) };
    local = { transport: "tcp", hostname: formatIPv6(buf.subarray(32, 48)), port: v.getUint16(50) };
  }
  if (!tlvsWellFormed(buf.subarray(V2_HEADER_LEN + addrLen, whole))) return err;
  if (!isUnicast(remote.hostname) || !isUnicast(local.hostname)) return err;
  return { kind: "done", version: 2, length: whole, remote, local };
}

/** Each TLV is type, 16-bit length and that many bytes, filling the span exactly (Envoy's parseTlvs). */
function tlvsWellFormed(t: Uint8Array): boolean {
  let i = 0;
  while (i < t.length) {
    if (i + 2 >= t.length) return false;
    i += 3 + ((t[i + 1] << 8) | t[i + 2]);
  }
  return i === t.length;
}

/** Envoy's isUnicastAddress: not the any address, not broadcast, not multicast. */
function isUnicast(ip: string): boolean {
  if (!ip.includes(":")) {
    const first = Number(ip.slice(0, ip.indexOf(".")));
    return ip !== "0.0.0.0" && ip !== "255.255.255.255" && (first & 0xf0) !== 0xe0;
  }
  return ip !== "::" && !ip.startsWith("ff");
}

/** The 16 bytes of a valid IPv6 literal (no zone). */
function ipv6Bytes(s: string): Uint8Array {
  const out = new Uint8Array(16);
  let tail4: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.indexOf(".", lastColon) > 0) {
    tail4 = s.slice(lastColon + 1).split(".").map(Number);
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const [head, rest] = s.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = rest === undefined || rest === "" ? [] : rest.split(":");
  const groups = [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  });
  if (tail4.length === 4) out.set(tail4, 12);
  return out;
}

/** inet_ntop's text of 16 bytes: lowercase, the longest run of 2+ zero groups as "::", mapped IPv4 dotted. */
export function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(0, 8);
  return `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

interface VersionStats {
  found: Counter;
  disallowed: Counter;
  error: Counter;
}

/**
 * One listener's proxy_protocol filter: config, stats and the sockets still in their header; `accept` runs once
 * per connection before filter chain selection.
 */
export class ProxyProtocolFilter {
  readonly #o: ParseOptions;
  readonly #legacyError: Counter;
  readonly #notFoundAllowed: Counter;
  readonly #notFoundDisallowed: Counter;
  readonly #v: [VersionStats, VersionStats];
  readonly #timeout: Counter;
  readonly #pending = new Set<Deno.Conn>();

  /** `root` holds `proxy_proto.*` and the legacy counter; `listener` the listener's `downstream_pre_cx_timeout`. */
  constructor(c: ProxyProtocolConfig, root: Scope, listener: Scope) {
    this.#o = {
      allowWithout: c.allow_requests_without_proxy_protocol,
      allowV1: !c.disallowed_versions.includes("V1"),
      allowV2: !c.disallowed_versions.includes("V2"),
    };
    const s = root.scope(c.stat_prefix === "" ? "proxy_proto" : `proxy_proto.${c.stat_prefix}`);
    const version = (n: string): VersionStats => {
      const vs = s.scope(`versions.${n}`);
      return { found: vs.counter("found"), disallowed: vs.counter("disallowed"), error: vs.counter("error") };
    };
    this.#legacyError = root.counter("downstream_cx_proxy_proto_error");
    this.#notFoundAllowed = s.counter("not_found_allowed");
    this.#notFoundDisallowed = s.counter("not_found_disallowed");
    this.#v = [version("v1"), version("v2")];
    this.#timeout = listener.counter("downstream_pre_cx_timeout");
  }

  /**
   * Reads the header within `timeoutMs`; resolves the connection to hand on (the header's addresses, the bytes
   * after it replayed) or null when it was closed (error, denied version, timeout, EOF). Never rejects.
   */
  async accept(conn: Deno.Conn, timeoutMs: number): Promise<Deno.Conn | null> {
    this.#pending.add(conn);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      safeClose(conn);
    }, timeoutMs);
    let buf = new Uint8Array(256);
    let len = 0;
    try {
      for (;;) {
        const n = await conn.read(buf.subarray(len));
        if (n === null) break;
        len += n;
        const r = parseProxyHeader(buf.subarray(0, len), this.#o);
        if (r.kind === "more") {
          if (len === buf.length || r.need > buf.length) {
            const next = new Uint8Array(Math.max(r.need, buf.length * 2));
            next.set(buf.subarray(0, len));
            buf = next;
          }
          continue;
        }
        this.#count(r);
        if (r.kind !== "done") break;
        return new PrefixedConn(conn, buf.slice(r.length, len), r.remote, r.local).asConn();
      }
    } catch {
      // closed by the timer or the listener, or reset by the peer
    } finally {
      clearTimeout(timer);
      this.#pending.delete(conn);
    }
    if (timedOut) this.#timeout.inc();
    safeClose(conn);
    return null;
  }

  #count(r: Exclude<ParseResult, { kind: "more" }>): void {
    if (r.version === 0) {
      (r.kind === "done" ? this.#notFoundAllowed : this.#notFoundDisallowed).inc();
      if (r.kind === "error") this.#legacyError.inc();
      return;
    }
    const v = this.#v[r.version - 1];
    if (r.kind === "done") v.found.inc();
    else if (r.kind === "denied") {
      v.found.inc();
      v.disallowed.inc();
    } else {
      v.error.inc();
      this.#legacyError.inc();
    }
  }

  /** Closes the sockets still sending their header (listener shutdown). */
  close(): void {
    for (const c of this.#pending) safeClose(c);
    this.#pending.clear();
  }
}

function safeClose(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

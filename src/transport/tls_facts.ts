/**
 * Facts about a downstream TLS session that Deno's `TlsConn` does not expose: the negotiated version, cipher
 * suite and session id, read from the server's plaintext ServerHello as it crosses the loopback splice
 * (inspected listeners only), and the served certificate's names, parsed once per certificate with
 * node:crypto. They feed the `%DOWNSTREAM_TLS_*%` and `%DOWNSTREAM_LOCAL_*%` access log operators.
 */
import type { X509Certificate } from "node:crypto";
import type { CertificateFacts } from "../common/tls_info.ts";
import { type CertifiedKey, tlsCrypto } from "./cert_store.ts";

/** What a ServerHello (and, in TLS 1.2, the ServerKeyExchange after it) says about the session. */
export interface ServerHelloFacts {
  /** "TLSv1.3", "TLSv1.2", ... */
  version: string;
  /** OpenSSL name of the cipher suite (the IANA code in hex when unknown). */
  cipher: string;
  /** Session id, lower-case hex; "" in TLS 1.3 (the field only echoes the client's legacy id there). */
  sessionId: string;
  /** Key exchange group in Envoy's (BoringSSL's) spelling ("X25519", "P-256"); "" when not seen. */
  curve: string;
  /** The session was resumed (TLS 1.3 pre-shared key, or TLS 1.2 echo of the client's session id). */
  resumed: boolean;
}

/** OpenSSL names of the suites rustls (Deno's TLS) negotiates, as Envoy prints them. */
const CIPHERS: Record<number, string> = {
  0x1301: "TLS_AES_128_GCM_SHA256",
  0x1302: "TLS_AES_256_GCM_SHA384",
  0x1303: "TLS_CHACHA20_POLY1305_SHA256",
  0xc02b: "ECDHE-ECDSA-AES128-GCM-SHA256",
  0xc02c: "ECDHE-ECDSA-AES256-GCM-SHA384",
  0xcca9: "ECDHE-ECDSA-CHACHA20-POLY1305",
  0xc02f: "ECDHE-RSA-AES128-GCM-SHA256",
  0xc030: "ECDHE-RSA-AES256-GCM-SHA384",
  0xcca8: "ECDHE-RSA-CHACHA20-POLY1305",
};

const VERSIONS: Record<number, string> = {
  0x0304: "TLSv1.3",
  0x0303: "TLSv1.2",
  0x0302: "TLSv1.1",
  0x0301: "TLSv1",
};

/** Named groups by IANA code, as BoringSSL names them (`ssl.curves.<name>`). */
const GROUPS: Record<number, string> = {
  0x0017: "P-256",
  0x0018: "P-384",
  0x0019: "P-521",
  0x001d: "X25519",
  0x11ec: "X25519MLKEM768",
  0x6399: "X25519Kyber768Draft00",
};

function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

function groupName(code: number): string {
  return GROUPS[code] ?? `0x${code.toString(16).padStart(4, "0")}`;
}

/**
 * The handshake messages of the server's first flight (plaintext handshake records only): [type, body] pairs,
 * "more" while the first message (ServerHello) is incomplete, null when the bytes are not TLS handshake.
 */
function handshakeMessages(
  b: Uint8Array,
): { msgs: [number, Uint8Array][]; stopped: boolean } | "more" | null {
  if (b.length < 5) return "more";
  if (b[0] !== 22 || b[1] !== 3) return null;
  // gather the payload of leading handshake records
  const parts: Uint8Array[] = [];
  let off = 0;
  let stopped = false;
  while (off + 5 <= b.length) {
    if (b[off] !== 22) {
      stopped = true; // ChangeCipherSpec or application data: the plaintext flight is over
      break;
    }
    const len = (b[off + 3] << 8) | b[off + 4];
    if (off + 5 + len > b.length) break;
    parts.push(b.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  if (parts.length === 0) return "more";
  let hs = parts[0];
  if (parts.length > 1) {
    let n = 0;
    for (const p of parts) n += p.length;
    hs = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      hs.set(p, o);
      o += p.length;
    }
  }
  const msgs: [number, Uint8Array][] = [];
  let p = 0;
  while (p + 4 <= hs.length) {
    const len = (hs[p + 1] << 16) | (hs[p + 2] << 8) | hs[p + 3];
    if (p + 4 + len > hs.length) break;
    msgs.push([hs[p], hs.subarray(p + 4, p + 4 + len)]);
    p += 4 + len;
  }
  if (msgs.length === 0) return stopped ? null : "more";
  return { msgs, stopped };
}

/** Parses a ServerHello body; null when malformed. */
function serverHello(m: Uint8Array, clientSessionId: string): ServerHelloFacts | null {
  if (m.length < 35) return null;
  let version = (m[0] << 8) | m[1];
  let p = 34; // legacy_version, random
  const sidLen = m[p++];
  if (p + sidLen + 3 > m.length) return null;
  const sid = m.subarray(p, p + sidLen);
  p += sidLen;
  const suite = (m[p] << 8) | m[p + 1];
  p += 3; // cipher_suite, compression
  let curve = "";
  let psk = false;
  if (p + 2 <= m.length) {
    const extEnd = Math.min(m.length, p + 2 + ((m[p] << 8) | m[p + 1]));
    p += 2;
    while (p + 4 <= extEnd) {
      const type = (m[p] << 8) | m[p + 1];
      const len = (m[p + 2] << 8) | m[p + 3];
      if (type === 43 && len === 2 && p + 6 <= extEnd) version = (m[p + 4] << 8) | m[p + 5];
      else if (type === 51 && len >= 2 && p + 6 <= extEnd) curve = groupName((m[p + 4] << 8) | m[p + 5]);
      else if (type === 41) psk = true;
      p += 4 + len;
    }
  }
  const sessionId = version === 0x0304 ? "" : hex(sid);
  return {
    version: VERSIONS[version] ?? `0x${version.toString(16)}`,
    cipher: CIPHERS[suite] ?? `0x${suite.toString(16).padStart(4, "0")}`,
    sessionId,
    curve,
    resumed: version === 0x0304 ? psk : sessionId !== "" && sessionId === clientSessionId,
  };
}

/**
 * Parses the server's first bytes: the facts, "more" while more bytes are needed (the ServerHello, and in a
 * full TLS 1.2 handshake the ServerKeyExchange that names the curve), or null when they are not a ServerHello.
 * `clientSessionId` (hex, from the ClientHello) tells a resumed TLS 1.2 session.
 */
export function parseServerHello(b: Uint8Array, clientSessionId = ""): ServerHelloFacts | "more" | null {
  const hs = handshakeMessages(b);
  if (hs === null || hs === "more") return hs;
  const [type, body] = hs.msgs[0];
  if (type !== 2) return null;
  const facts = serverHello(body, clientSessionId);
  if (facts === null || facts.version !== "TLSv1.2" || facts.resumed || facts.curve !== "") return facts;
  // TLS 1.2: the group is in the ServerKeyExchange (ECParameters: curve_type 3 = named_curve, then the group)
  for (let i = 1; i < hs.msgs.length; i++) {
    const [t, m] = hs.msgs[i];
    if (t === 12) {
      if (m.length >= 3 && m[0] === 3) facts.curve = groupName((m[1] << 8) | m[2]);
      return facts;
    }
    if (t === 14) return facts; // ServerHelloDone without a key exchange
  }
  return hs.stopped ? facts : "more";
}

/** Watches the server's first bytes on a splice until the ServerHello (and key exchange) is read, once. */
export class ServerHelloSniffer {
  /** The facts once seen; null until then (or when the bytes were not a ServerHello). */
  facts: ServerHelloFacts | null = null;
  #buf: Uint8Array | null = null;
  #done = false;
  readonly #clientSessionId: string;

  /** `clientSessionId`: the ClientHello's session id (hex), to tell a resumed TLS 1.2 session. */
  constructor(clientSessionId = "") {
    this.#clientSessionId = clientSessionId;
  }

  /** True while more bytes are wanted. */
  get wanting(): boolean {
    return !this.#done;
  }

  /** Feeds bytes going from the TLS server to the client (copied only while the flight is incomplete). */
  feed(chunk: Uint8Array): void {
    if (this.#done) return;
    let b = chunk;
    if (this.#buf !== null) {
      b = new Uint8Array(this.#buf.length + chunk.length);
      b.set(this.#buf);
      b.set(chunk, this.#buf.length);
    }
    const r = parseServerHello(b, this.#clientSessionId);
    if (r === "more" && b.length < 64 * 1024) {
      this.#buf = b === chunk ? chunk.slice() : b;
      return;
    }
    this.#done = true;
    this.#buf = null;
    if (r !== "more" && r !== null) this.facts = r;
  }
}

function rfc2253(name: string): string {
  // Deno prints one RDN per line in certificate order (multi-valued ones joined by " + "); RFC 2253 (Envoy's
  // X509_NAME_print_ex with XN_FLAG_RFC2253) reverses every entry, "," between RDNs and "+" inside one
  const lines = name.split("\n").filter((l) => l !== "");
  const out: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const avas = lines[i].split(" + ");
    const rdn: string[] = [];
    for (let j = avas.length - 1; j >= 0; j--) {
      const l = avas[j];
      const eq = l.indexOf("=");
      rdn.push(eq < 0 ? l : l.slice(0, eq + 1) + escapeValue(l.slice(eq + 1)));
    }
    out.push(rdn.join("+"));
  }
  return out.join(",");
}

function escapeValue(v: string): string {
  let e = v.replace(/[,+"\\<>;]/g, "\\$&");
  if (e.startsWith("#") || e.startsWith(" ")) e = "\\" + e;
  if (e.endsWith(" ") && !e.endsWith("\\ ")) e = e.slice(0, -1) + "\\ ";
  return e;
}

function sanList(altNames: string | undefined, prefix: string): string[] {
  const out: string[] = [];
  if (!altNames) return out;
  for (const part of altNames.split(", ")) if (part.startsWith(prefix)) out.push(part.slice(prefix.length));
  return out;
}

/** A serial number as Envoy prints it (BoringSSL's BN_bn2hex: lower-case hex, whole bytes). */
export function envoySerial(serial: string): string {
  const s = serial.toLowerCase().replace(/^0+(?=.)/, "");
  return s.length % 2 === 1 ? `0${s}` : s;
}

/** The access log and XFCC facts of one parsed certificate. */
export function x509Facts(x: X509Certificate): CertificateFacts {
  const alt = x.subjectAltName;
  const uris = sanList(alt, "URI:");
  const dns = sanList(alt, "DNS:");
  return {
    uriSans: uris.join(","),
    dnsSans: dns.join(","),
    ipSans: sanList(alt, "IP Address:").join(","),
    subject: rfc2253(x.subject),
    issuer: rfc2253(x.issuer),
    serial: envoySerial(x.serialNumber),
    fingerprint256: x.fingerprint256.replaceAll(":", "").toLowerCase(),
    fingerprint1: x.fingerprint.replaceAll(":", "").toLowerCase(),
    urlEncodedPem: encodeURIComponent(x.toString()),
    validFrom: Date.parse(x.validFrom),
    validTo: Date.parse(x.validTo),
    uriSanList: uris,
    dnsSanList: dns,
  };
}

const factsCache = new WeakMap<CertifiedKey, CertificateFacts>();

/** The access log facts of `key`'s leaf certificate (parsed on first use, then cached). */
export function certificateFacts(key: CertifiedKey): CertificateFacts {
  let f = factsCache.get(key);
  if (f !== undefined) return f;
  f = x509Facts(new (tlsCrypto().X509Certificate)(key.cert));
  factsCache.set(key, f);
  return f;
}

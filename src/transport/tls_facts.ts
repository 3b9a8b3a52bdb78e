/**
 * Facts about a downstream TLS session that Deno's `TlsConn` does not expose: the negotiated version, cipher
 * suite and session id, read from the server's plaintext ServerHello as it crosses the loopback splice
 * (inspected listeners only), and the served certificate's names, parsed once per certificate with
 * node:crypto. They feed the `%DOWNSTREAM_TLS_*%` and `%DOWNSTREAM_LOCAL_*%` access log operators.
 */
import type { CertificateFacts } from "../common/tls_info.ts";
import { type CertifiedKey, tlsCrypto } from "./cert_store.ts";

/** What a ServerHello says about the session. */
export interface ServerHelloFacts {
  /** "TLSv1.3", "TLSv1.2", ... */
  version: string;
  /** OpenSSL name of the cipher suite (the IANA code in hex when unknown). */
  cipher: string;
  /** Session id, lower-case hex; "" in TLS 1.3 (the field only echoes the client's legacy id there). */
  sessionId: string;
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

function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

/**
 * Parses the ServerHello at the start of the server's first bytes: the facts, "more" when the record is not
 * complete yet, or null when the bytes are not a ServerHello.
 */
export function parseServerHello(b: Uint8Array): ServerHelloFacts | "more" | null {
  if (b.length < 5) return "more";
  if (b[0] !== 22 || b[1] !== 3) return null;
  const recLen = (b[3] << 8) | b[4];
  if (b.length < 5 + recLen) return "more";
  const end = 5 + recLen;
  let p = 5;
  if (recLen < 4 || b[p] !== 2) return null;
  const hsEnd = Math.min(end, p + 4 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]));
  p += 4;
  if (p + 35 > hsEnd) return null;
  let version = (b[p] << 8) | b[p + 1];
  p += 34; // legacy_version, random
  const sidLen = b[p++];
  if (p + sidLen + 3 > hsEnd) return null;
  const sid = b.subarray(p, p + sidLen);
  p += sidLen;
  const suite = (b[p] << 8) | b[p + 1];
  p += 3; // cipher_suite, compression
  if (p + 2 <= hsEnd) {
    const extEnd = Math.min(hsEnd, p + 2 + ((b[p] << 8) | b[p + 1]));
    p += 2;
    while (p + 4 <= extEnd) {
      const type = (b[p] << 8) | b[p + 1];
      const len = (b[p + 2] << 8) | b[p + 3];
      if (type === 43 && len === 2 && p + 6 <= extEnd) version = (b[p + 4] << 8) | b[p + 5];
      p += 4 + len;
    }
  }
  const v = VERSIONS[version] ?? `0x${version.toString(16)}`;
  return {
    version: v,
    cipher: CIPHERS[suite] ?? `0x${suite.toString(16).padStart(4, "0")}`,
    sessionId: version === 0x0304 ? "" : hex(sid),
  };
}

/** Watches the server's first bytes on a splice until the ServerHello is read (a few bytes, once). */
export class ServerHelloSniffer {
  /** The facts once seen; null until then (or when the bytes were not a ServerHello). */
  facts: ServerHelloFacts | null = null;
  #buf: Uint8Array | null = null;
  #done = false;

  /** True while more bytes are wanted. */
  get wanting(): boolean {
    return !this.#done;
  }

  /** Feeds bytes going from the TLS server to the client (copied only while a record is incomplete). */
  feed(chunk: Uint8Array): void {
    if (this.#done) return;
    let b = chunk;
    if (this.#buf !== null) {
      b = new Uint8Array(this.#buf.length + chunk.length);
      b.set(this.#buf);
      b.set(chunk, this.#buf.length);
    }
    const r = parseServerHello(b);
    if (r === "more" && b.length < 16 * 1024) {
      this.#buf = b === chunk ? chunk.slice() : b;
      return;
    }
    this.#done = true;
    this.#buf = null;
    if (r !== "more" && r !== null) this.facts = r;
  }
}

function rfc2253(name: string): string {
  // node prints one RDN per line, most significant first; RFC 2253 reverses them with "," between
  const lines = name.split("\n").filter((l) => l !== "");
  const out: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i];
    const eq = l.indexOf("=");
    out.push(eq < 0 ? l : l.slice(0, eq + 1) + l.slice(eq + 1).replace(/[,+"\\<>;]/g, "\\$&"));
  }
  return out.join(",");
}

function sans(altNames: string | undefined, prefix: string): string {
  if (!altNames) return "";
  const out: string[] = [];
  for (const part of altNames.split(", ")) if (part.startsWith(prefix)) out.push(part.slice(prefix.length));
  return out.join(",");
}

const factsCache = new WeakMap<CertifiedKey, CertificateFacts>();

/** The access log facts of `key`'s leaf certificate (parsed on first use, then cached). */
export function certificateFacts(key: CertifiedKey): CertificateFacts {
  let f = factsCache.get(key);
  if (f !== undefined) return f;
  const x = new (tlsCrypto().X509Certificate)(key.cert);
  const alt = x.subjectAltName;
  f = {
    uriSans: sans(alt, "URI:"),
    dnsSans: sans(alt, "DNS:"),
    ipSans: sans(alt, "IP Address:"),
    subject: rfc2253(x.subject),
    issuer: rfc2253(x.issuer),
    serial: x.serialNumber.toLowerCase(),
    fingerprint256: x.fingerprint256.replaceAll(":", "").toLowerCase(),
    fingerprint1: x.fingerprint.replaceAll(":", "").toLowerCase(),
    urlEncodedPem: encodeURIComponent(x.toString()),
    validFrom: Date.parse(x.validFrom),
    validTo: Date.parse(x.validTo),
  };
  factsCache.set(key, f);
  return f;
}

/**
 * Peer certificate validation beyond the runtime's chain check, as Envoy's default certificate validator does it:
 * subject alternative name matchers, certificate and SPKI pins, revocation lists, and when a certificate is
 * requested or required at all. Compiled once per validation context; `verifyPeer` runs once per handshake.
 */
import type { StringMatcherConfig } from "../config/common.ts";
import { tlsCrypto } from "./cert_store.ts";
import { checkRevocation, type Crl, parsePemCrls } from "./crl.ts";
import type { VerifyFailure } from "./ssl_stats.ts";
import {
  certificateHashHex,
  type SanMatcherConfig,
  spkiHashBytes,
  type ValidationContextConfig,
} from "./tls_config.ts";

/** The SAN kinds as printed by the runtime's peer certificate ("DNS:", "URI:", "email:", "IP Address:"). */
const SAN_PREFIX: Record<SanMatcherConfig["san_type"], string> = {
  DNS: "DNS:",
  URI: "URI:",
  EMAIL: "email:",
  IP_ADDRESS: "IP Address:",
};

/** Compiles an Envoy StringMatcher into a predicate (config time). */
export function compileStringMatcher(m: StringMatcherConfig, dnsExact = false): (v: string) => boolean {
  const ic = m.ignore_case === true;
  const norm = (s: string) => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const want = norm(m.exact);
    if (!dnsExact) return (v) => norm(v) === want;
    // a wildcard DNS SAN ("*.example.com") matches one label in its place, as Envoy's dNSNameMatch
    return (v) => {
      const s = norm(v);
      if (s === want) return true;
      if (!s.startsWith("*.")) return false;
      const dot = want.indexOf(".");
      return dot > 0 && want.slice(dot) === s.slice(1);
    };
  }
  if (m.prefix !== undefined) {
    const p = norm(m.prefix);
    return (v) => norm(v).startsWith(p);
  }
  if (m.suffix !== undefined) {
    const p = norm(m.suffix);
    return (v) => norm(v).endsWith(p);
  }
  if (m.contains !== undefined) {
    const p = norm(m.contains);
    return (v) => norm(v).includes(p);
  }
  const re = new RegExp(`^(?:${m.safe_regex!.regex})$`, ic ? "i" : "");
  return (v) => re.test(v);
}

/** A compiled SAN check: true when any configured matcher accepts one of the certificate's SANs. */
export type SanCheck = (subjectAltName: string) => boolean;

/** Compiles `match_typed_subject_alt_names` (and the deprecated untyped list); undefined when empty. */
export function compileSanCheck(
  typed: readonly SanMatcherConfig[],
  untyped: readonly StringMatcherConfig[] = [],
): SanCheck | undefined {
  if (typed.length === 0 && untyped.length === 0) return undefined;
  const checks: { prefix: string | null; test: (v: string) => boolean }[] = [
    ...typed.map((t) => ({
      prefix: SAN_PREFIX[t.san_type],
      test: compileStringMatcher(t.matcher, t.san_type === "DNS"),
    })),
    ...untyped.map((m) => ({ prefix: null, test: compileStringMatcher(m, true) })),
  ];
  return (sanText) => {
    for (const part of sanText.split(", ")) {
      const colon = part.indexOf(":");
      if (colon < 0) continue;
      for (const c of checks) {
        if (c.prefix === null) {
          if (c.test(part.slice(colon + 1))) return true;
        } else if (part.startsWith(c.prefix) && c.test(part.slice(c.prefix.length))) {
          return true;
        }
      }
    }
    return false;
  };
}

/** A validation context compiled for handshakes. */
export interface PeerValidation {
  /** Ask the peer for a certificate (downstream: send a CertificateRequest). */
  readonly request: boolean;
  /** Refuse a peer without a certificate. */
  readonly require: boolean;
  /** The trusted CA certificates (PEM, CRL blocks removed); undefined without trusted_ca. */
  readonly ca: string | undefined;
  /** trust_chain_verification ACCEPT_UNTRUSTED: failures are counted, not enforced. */
  readonly acceptUntrusted: boolean;
  readonly san: SanCheck | undefined;
  /** verify_certificate_hash, lower-case hex. */
  readonly hashes: ReadonlySet<string>;
  /** verify_certificate_spki, as lower-case hex of the 32 bytes. */
  readonly spkis: ReadonlySet<string>;
  /** CRLs from `crl` and the trusted_ca bundle; empty when none (no revocation check). */
  readonly crls: readonly Crl[];
  readonly leafOnlyCrl: boolean;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\s*/g;

/**
 * Compiles a validation context (config or secret time): `trustedCa` and `crlPem` are the DataSources' text,
 * already read. Throws when a CRL cannot be parsed. Who is asked for a certificate follows Envoy: a trusted CA,
 * SAN matchers, pins or ACCEPT_UNTRUSTED request one; matchers and pins (or a CA with
 * `require_client_certificate`) require it.
 */
export function compilePeerValidation(
  vc: ValidationContextConfig | undefined,
  trustedCa: string | undefined,
  crlPem: string | undefined,
  requireClientCertificate = false,
): PeerValidation {
  const ca = trustedCa === undefined ? undefined : (trustedCa.match(PEM_CERT_RE) ?? []).join("");
  const san = vc ? compileSanCheck(vc.match_typed_subject_alt_names, vc.match_subject_alt_names) : undefined;
  const hashes = new Set((vc?.verify_certificate_hash ?? []).map((h) => certificateHashHex(h)!));
  const spkis = new Set((vc?.verify_certificate_spki ?? []).map((h) => spkiHashBytes(h)!));
  const acceptUntrusted = vc?.trust_chain_verification === "ACCEPT_UNTRUSTED";
  const pinned = san !== undefined || hashes.size > 0 || spkis.size > 0;
  const crls = [
    ...(crlPem !== undefined ? parsePemCrls(crlPem) : []),
    ...(trustedCa !== undefined ? parsePemCrls(trustedCa) : []),
  ];
  return {
    request: ca !== undefined || pinned || acceptUntrusted,
    require: (ca !== undefined && requireClientCertificate) || (pinned && !acceptUntrusted),
    ca: ca === "" ? undefined : ca,
    acceptUntrusted,
    san,
    hashes,
    spkis,
    crls,
    leafOnlyCrl: vc?.only_verify_leaf_cert_crl ?? false,
  };
}

/** The peer's certificate as a handshake showed it. */
export interface PeerCertificate {
  /** DER certificates, leaf first: the chain the runtime verified (ending at the trust anchor), else the leaf. */
  readonly chain: readonly Uint8Array[];
  /** The leaf's SANs as the runtime prints them ("DNS:a, URI:b, IP Address:c"). */
  readonly subjectAltName: string;
  /** The runtime verified the chain against the trusted CA. */
  readonly trusted: boolean;
}

function sha256Hex(data: Uint8Array): string {
  return tlsCrypto().createHash("sha256").update(data).digest("hex");
}

/** The leaf's SHA-256 SubjectPublicKeyInfo digest, hex. */
function spkiHex(der: Uint8Array): string {
  const c = tlsCrypto();
  const spki = new c.X509Certificate(der).publicKey.export({ type: "spki", format: "der" }) as Uint8Array;
  return sha256Hex(spki);
}

/**
 * Checks a handshake's peer against `v` (Envoy's order: chain and revocation, SANs, pins): the failure to
 * count, or undefined when it passes. With ACCEPT_UNTRUSTED the caller counts it and keeps the connection.
 */
export function verifyPeer(
  v: PeerValidation,
  peer: PeerCertificate | null,
  now = Date.now(),
): VerifyFailure | undefined {
  if (peer === null || peer.chain.length === 0) return v.require ? "no_cert" : undefined;
  if (v.ca !== undefined) {
    if (!peer.trusted) return "error";
    if (v.crls.length > 0) {
      let revoked: string | undefined;
      try {
        revoked = checkRevocation(peer.chain, v.crls, v.leafOnlyCrl, now);
      } catch {
        revoked = "unreadable certificate";
      }
      if (revoked !== undefined) return "error";
    }
  }
  if (v.san !== undefined && !v.san(peer.subjectAltName)) return "san";
  if (v.hashes.size > 0 || v.spkis.size > 0) {
    const leaf = peer.chain[0];
    const ok = (v.hashes.size > 0 && v.hashes.has(sha256Hex(leaf))) ||
      (v.spkis.size > 0 && v.spkis.has(spkiHex(leaf)));
    if (!ok) return "cert_hash";
  }
  // without a trusted CA a certificate passes only when something validated it (Envoy: NotValidated fails)
  if (v.ca === undefined && v.san === undefined && v.hashes.size === 0 && v.spkis.size === 0) {
    return v.acceptUntrusted ? undefined : "error";
  }
  return undefined;
}

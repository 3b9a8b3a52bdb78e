/**
 * Certificate revocation lists (`validation_context.crl`, and CRLs inside a `trusted_ca` bundle), checked by
 * nuncio because the runtime's TLS ignores them: a minimal DER reader for certificates and CRLs, each CRL's
 * signature verified with its issuer's key from the chain, and Envoy's (BoringSSL's) rules: every certificate
 * checked (the leaf only with `only_verify_leaf_cert_crl`) needs a current CRL from its issuer and must not be
 * listed in it. Runs once per handshake on the verified chain, and only on contexts that configure CRLs.
 */
import { tlsCrypto } from "./cert_store.ts";

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the value. */
  value: number;
  /** Offset just past the value. */
  end: number;
}

function tlv(b: Uint8Array, off: number): Tlv {
  if (off + 2 > b.length) throw new Error("truncated DER");
  const tag = b[off];
  let len = b[off + 1];
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > b.length) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i];
    p += n;
  }
  if (p + len > b.length) throw new Error("truncated DER");
  return { tag, start: off, value: p, end: p + len };
}

/** The elements of a constructed value. */
function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.value; p < t.end;) {
    const c = tlv(b, p);
    out.push(c);
    p = c.end;
  }
  return out;
}

function hexOf(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

/** An INTEGER's value as lower-case hex without leading zero bytes. */
function intHex(b: Uint8Array, t: Tlv): string {
  let v = t.value;
  while (v < t.end - 1 && b[v] === 0) v++;
  return hexOf(b.subarray(v, t.end));
}

function parseTime(b: Uint8Array, t: Tlv): number {
  const s = new TextDecoder().decode(b.subarray(t.value, t.end));
  const m = t.tag === 0x17
    ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s)
    : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s);
  if (!m) throw new Error(`bad time "${s}"`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
}

/** What revocation checks need of a certificate. */
export interface CertIds {
  /** Serial, lower-case hex without leading zero bytes. */
  serial: string;
  /** DER of the issuer Name, hex. */
  issuer: string;
  /** DER of the subject Name, hex. */
  subject: string;
}

/** Reads serial, issuer and subject from a DER certificate; throws when malformed. */
export function certIds(der: Uint8Array): CertIds {
  const cert = tlv(der, 0);
  const tbs = children(der, cert)[0];
  const f = children(der, tbs);
  let i = f[0].tag === 0xa0 ? 1 : 0; // [0] version
  const serial = intHex(der, f[i++]);
  i++; // signature
  const issuer = hexOf(der.subarray(f[i].start, f[i].end));
  i += 2; // issuer, validity
  const subject = hexOf(der.subarray(f[i].start, f[i].end));
  return { serial, issuer, subject };
}

/** One parsed CRL. */
export interface Crl {
  /** DER of the issuer Name, hex. */
  issuer: string;
  thisUpdate: number;
  /** ms since epoch; undefined when the CRL has none. */
  nextUpdate: number | undefined;
  /** Revoked serials (lower-case hex). */
  revoked: ReadonlySet<string>;
  /** The signed part (tbsCertList DER) and its signature, for `crlSignedBy`. */
  tbs: Uint8Array;
  signature: Uint8Array;
  /** Digest for node:crypto's verify (null for Ed25519); undefined when the algorithm is unknown. */
  digest: string | null | undefined;
}

const DIGESTS: Record<string, string | null> = {
  "2a8648ce3d040302": "sha256",
  "2a8648ce3d040303": "sha384",
  "2a8648ce3d040304": "sha512",
  "2a864886f70d01010b": "sha256",
  "2a864886f70d01010c": "sha384",
  "2a864886f70d01010d": "sha512",
  "2a864886f70d010105": "sha1",
  "2b6570": null,
};

/** Parses one DER CRL; throws when malformed. */
export function parseCrl(der: Uint8Array): Crl {
  const top = children(der, tlv(der, 0));
  const tbsT = top[0];
  const f = children(der, tbsT);
  let i = f[0].tag === 0x02 ? 1 : 0; // version
  i++; // signature
  const issuer = hexOf(der.subarray(f[i].start, f[i].end));
  i++;
  const thisUpdate = parseTime(der, f[i++]);
  let nextUpdate: number | undefined;
  if (i < f.length && (f[i].tag === 0x17 || f[i].tag === 0x18)) nextUpdate = parseTime(der, f[i++]);
  const revoked = new Set<string>();
  if (i < f.length && f[i].tag === 0x30) {
    for (const entry of children(der, f[i])) revoked.add(intHex(der, children(der, entry)[0]));
  }
  const algOid = children(der, top[1])[0];
  const oid = hexOf(der.subarray(algOid.value, algOid.end));
  const sig = top[2];
  return {
    issuer,
    thisUpdate,
    nextUpdate,
    revoked,
    tbs: der.subarray(tbsT.start, tbsT.end),
    signature: der.subarray(sig.value + 1, sig.end), // BIT STRING: skip the unused-bits byte
    digest: oid in DIGESTS ? DIGESTS[oid] : undefined,
  };
}

const PEM_CRL_RE = /-----BEGIN X509 CRL-----([^-]+)-----END X509 CRL-----/g;

/** The CRLs in a PEM text (a crl DataSource, or a trusted_ca bundle that carries some); throws when malformed. */
export function parsePemCrls(pem: string): Crl[] {
  const out: Crl[] = [];
  for (const m of pem.matchAll(PEM_CRL_RE)) {
    const der = Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
    out.push(parseCrl(der));
  }
  return out;
}

/** True when `crl` carries a valid signature by the certificate `issuerDer`. */
export function crlSignedBy(crl: Crl, issuerDer: Uint8Array): boolean {
  if (crl.digest === undefined) return false;
  try {
    const c = tlsCrypto();
    const key = new c.X509Certificate(issuerDer).publicKey;
    return c.verify(crl.digest, crl.tbs, key, crl.signature);
  } catch {
    return false;
  }
}

/**
 * Checks the verified chain (DER, leaf first, trust anchor last) against `crls`: undefined when it passes, else
 * the reason (Envoy counts it as `fail_verify_error`). `leafOnly`: only_verify_leaf_cert_crl.
 */
export function checkRevocation(
  chain: readonly Uint8Array[],
  crls: readonly Crl[],
  leafOnly: boolean,
  now: number,
): string | undefined {
  const ids = chain.map((d) => certIds(d));
  const last = leafOnly ? 0 : chain.length - 1;
  for (let i = 0; i <= last; i++) {
    const id = ids[i];
    // the issuer is the next certificate, or the certificate itself when self-issued (the root)
    const issuerIdx = i + 1 < chain.length ? i + 1 : (id.issuer === id.subject ? i : -1);
    const candidates = crls.filter((c) => c.issuer === id.issuer);
    const crl = issuerIdx < 0 ? undefined : candidates.find((c) => crlSignedBy(c, chain[issuerIdx]));
    if (crl === undefined) return "unable to get certificate CRL";
    if (crl.thisUpdate > now) return "CRL is not yet valid";
    if (crl.nextUpdate !== undefined && crl.nextUpdate < now) return "CRL has expired";
    if (crl.revoked.has(id.serial)) return "certificate revoked";
  }
  return undefined;
}

/**
 * TlsParameters against what the runtime's TLS (rustls, in Deno.listenTls/connectTls and node:tls) can do:
 * it speaks TLS 1.2 and 1.3 only, negotiates a fixed set of cipher suites and key exchange groups, and cannot be
 * told to use fewer of them. Version bounds inside 1.2..1.3 are enforced (see tls_downstream.ts and
 * tls_upstream.ts); `cipher_suites` and `ecdh_curves` are accepted only when they allow everything the runtime
 * may negotiate (so nothing outside the configured list is ever used), and rejected otherwise, naming why.
 */

/** Envoy's TlsParameters.TlsProtocol values. */
export const TLS_VERSIONS = ["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"] as const;
/** One TlsParameters.TlsProtocol value. */
export type TlsVersionName = typeof TLS_VERSIONS[number];

/** The TLS 1.2 cipher suites rustls negotiates, by their OpenSSL/BoringSSL names (as Envoy configures them). */
export const RUNTIME_TLS12_CIPHERS: readonly string[] = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
];

/** The key exchange groups rustls negotiates, by Envoy's (BoringSSL's) names. */
export const RUNTIME_CURVES: readonly string[] = ["X25519", "P-256", "P-384"];

/** Names BoringSSL knows for ecdh_curves beyond the runtime's (accepted as extra entries of a list). */
const KNOWN_CURVES = new Set([
  ...RUNTIME_CURVES,
  "P-224",
  "P-521",
  "X25519Kyber768Draft00",
  "X25519MLKEM768",
  "prime256v1",
  "secp384r1",
  "secp521r1",
]);

/** TLS 1.3 suite names, which Envoy (BoringSSL) does not let cipher_suites configure. */
const TLS13_SUITES = new Set([
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
]);

/** Version bounds a context enforces: 2 for TLS 1.2, 3 for TLS 1.3. */
export interface VersionBounds {
  readonly min: 2 | 3;
  readonly max: 2 | 3;
}

/** Envoy's defaults on both sides (server and client): TLS 1.2 to TLS 1.3. */
export const DEFAULT_BOUNDS: VersionBounds = { min: 2, max: 3 };

/**
 * The bounds a tls_params pair stands for: TLS_AUTO takes Envoy's default (1.2 / 1.3); a minimum of TLSv1_0 or
 * TLSv1_1 is 1.2, the lowest the runtime speaks (clients speaking only TLS 1.0/1.1 fail, as they do against
 * Envoy's default minimum). Undefined when the pair cannot be served (see `versionIssue`).
 */
export function versionBounds(min: TlsVersionName, max: TlsVersionName): VersionBounds | undefined {
  const lo = min === "TLSv1_3" ? 3 : 2;
  const hi = max === "TLS_AUTO" || max === "TLSv1_3" ? 3 : max === "TLSv1_2" ? 2 : undefined;
  if (hi === undefined || lo > hi) return undefined;
  return { min: lo, max: hi };
}

/** Why a min/max pair is refused, or undefined when it can be enforced. */
export function versionIssue(
  min: TlsVersionName,
  max: TlsVersionName,
): { field: "tls_minimum_protocol_version" | "tls_maximum_protocol_version"; message: string } | undefined {
  if (max === "TLSv1_0" || max === "TLSv1_1") {
    return {
      field: "tls_maximum_protocol_version",
      message:
        "Field not supported by nuncio: the runtime speaks only TLS 1.2 and TLS 1.3 (maximum below TLSv1_2)",
    };
  }
  const rank = (v: TlsVersionName) => TLS_VERSIONS.indexOf(v);
  if (min !== "TLS_AUTO" && max !== "TLS_AUTO" && rank(min) > rank(max)) {
    return {
      field: "tls_minimum_protocol_version",
      message: `Minimum protocol version ${min} is above the maximum ${max}`,
    };
  }
  return undefined;
}

/** Splits an Envoy cipher list entry ("[A|B]" groups of equal preference) into names. */
function cipherNames(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of list) {
    const inner = entry.startsWith("[") && entry.endsWith("]") ? entry.slice(1, -1) : entry;
    for (const n of inner.split("|")) if (n !== "") out.push(n);
  }
  return out;
}

/**
 * Why `cipher_suites` cannot be honoured, or undefined: TLS 1.2 suites only (Envoy cannot configure TLS 1.3
 * ones either), and the list must allow every TLS 1.2 suite the runtime negotiates (it cannot be narrowed).
 * `tls12` says whether TLS 1.2 can be negotiated at all (the list is moot when the minimum is TLS 1.3).
 */
export function cipherSuitesIssue(list: readonly string[], tls12: boolean): string | undefined {
  const names = cipherNames(list);
  const bad = names.find((n) => /^[!+\-@]/.test(n));
  if (bad !== undefined) {
    return `Field not supported by nuncio: cipher list operators ("${bad}"); list the suites by name`;
  }
  const v13 = names.find((n) => TLS13_SUITES.has(n));
  if (v13 !== undefined) {
    return `TLS 1.3 cipher suites cannot be configured ("${v13}"), as in Envoy: list TLS 1.2 suites only`;
  }
  if (!tls12) return undefined;
  const missing = RUNTIME_TLS12_CIPHERS.filter((c) => !names.includes(c));
  if (missing.length === 0) return undefined;
  return "Field not supported by nuncio: the runtime always offers the TLS 1.2 suites " +
    `${RUNTIME_TLS12_CIPHERS.join(", ")} and cannot be limited to fewer (missing: ${missing.join(", ")})`;
}

/** Why `ecdh_curves` cannot be honoured, or undefined: the list must allow every group the runtime uses. */
export function ecdhCurvesIssue(list: readonly string[]): string | undefined {
  const unknown = list.find((c) => !KNOWN_CURVES.has(c));
  if (unknown !== undefined) return `Unknown ECDH curve "${unknown}"`;
  const alias: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384" };
  const have = new Set(list.map((c) => alias[c] ?? c));
  const missing = RUNTIME_CURVES.filter((c) => !have.has(c));
  if (missing.length === 0) return undefined;
  return `Field not supported by nuncio: the runtime always offers the groups ${RUNTIME_CURVES.join(", ")} ` +
    `and cannot be limited to fewer (missing: ${missing.join(", ")})`;
}

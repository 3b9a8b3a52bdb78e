/**
 * zod schemas for the transport sockets nuncio implements: `envoy.transport_sockets.tls` with
 * DownstreamTlsContext (listeners) and UpstreamTlsContext (clusters), and `envoy.transport_sockets.raw_buffer`.
 */
import { z } from "zod/mini";
import { stringMatcher } from "../config/common.ts";
import { configSourceSchema } from "../config/config_source.ts";
import { envoyEnum, notSupportedFields, transformWithIssues } from "../config/schema_util.ts";
import {
  cipherSuitesIssue,
  DEFAULT_BOUNDS,
  ecdhCurvesIssue,
  TLS_VERSIONS,
  type VersionBounds,
  versionBounds,
  versionIssue,
} from "./tls_params.ts";
import type { Extension } from "../registry/registry.ts";
import { registry } from "../registry/registry.ts";

/** @type URL of DownstreamTlsContext. */
export const DOWNSTREAM_TLS_TYPE =
  "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
/** @type URL of UpstreamTlsContext. */
export const UPSTREAM_TLS_TYPE =
  "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
/** @type URL of RawBuffer. */
export const RAW_BUFFER_TYPE =
  "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
/** Extension name of the TLS transport socket. */
export const TLS_NAME = "envoy.transport_sockets.tls";
/** Extension name of the plain-text transport socket. */
export const RAW_BUFFER_NAME = "envoy.transport_sockets.raw_buffer";

/** envoy.config.core.v3.DataSource: where PEM text comes from. */
export const dataSource = z.strictObject({
  filename: z.optional(z.string().check(z.minLength(1))),
  inline_string: z.optional(z.string()),
  inline_bytes: z.optional(z.string()),
  environment_variable: z.optional(z.string().check(z.minLength(1))),
  ...notSupportedFields(["watched_directory"]),
}).check(
  z.refine(
    (d) =>
      [d.filename, d.inline_string, d.inline_bytes, d.environment_variable].filter((x) => x !== undefined)
        .length === 1,
    {
      message: "Exactly one of filename, inline_string, inline_bytes, environment_variable must be set",
    },
  ),
);

/** The parsed form of a DataSource. */
export type DataSourceConfig = z.output<typeof dataSource>;

/** envoy.extensions.transport_sockets.tls.v3.TlsCertificate. */
export const tlsCertificate = z.strictObject({
  certificate_chain: dataSource,
  private_key: dataSource,
  ...notSupportedFields([
    "pkcs12",
    "watched_directory",
    "private_key_provider",
    "password",
    "ocsp_staple",
    "signed_certificate_timestamp",
  ]),
});

/** The parsed form of a TlsCertificate. */
export type TlsCertificateConfig = z.output<typeof tlsCertificate>;

/**
 * TlsParameters: version bounds within TLS 1.2..1.3 are enforced; cipher_suites and ecdh_curves are accepted
 * when they allow everything the runtime negotiates (see tls_params.ts).
 */
const tlsParams = z.strictObject({
  tls_minimum_protocol_version: z._default(envoyEnum(TLS_VERSIONS), "TLS_AUTO"),
  tls_maximum_protocol_version: z._default(envoyEnum(TLS_VERSIONS), "TLS_AUTO"),
  cipher_suites: z._default(z.array(z.string().check(z.minLength(1))), []),
  ecdh_curves: z._default(z.array(z.string().check(z.minLength(1))), []),
  ...notSupportedFields(["signature_algorithms", "compliance_policies"]),
}).check(z.superRefine((p, ctx) => {
  const v = versionIssue(p.tls_minimum_protocol_version, p.tls_maximum_protocol_version);
  if (v) {
    ctx.addIssue({ code: "custom", path: [v.field], message: v.message });
    return;
  }
  const bounds = versionBounds(p.tls_minimum_protocol_version, p.tls_maximum_protocol_version)!;
  const ciphers = p.cipher_suites.length > 0
    ? cipherSuitesIssue(p.cipher_suites, bounds.min === 2)
    : undefined;
  if (ciphers) ctx.addIssue({ code: "custom", path: ["cipher_suites"], message: ciphers });
  const curves = p.ecdh_curves.length > 0 ? ecdhCurvesIssue(p.ecdh_curves) : undefined;
  if (curves) ctx.addIssue({ code: "custom", path: ["ecdh_curves"], message: curves });
}));

/** The parsed form of TlsParameters. */
export type TlsParamsConfig = z.output<typeof tlsParams>;

/** The TLS versions a context allows (Envoy's defaults, TLS 1.2 to 1.3, without tls_params). */
export function tlsBounds(p: TlsParamsConfig | undefined): VersionBounds {
  if (p === undefined) return DEFAULT_BOUNDS;
  return versionBounds(p.tls_minimum_protocol_version, p.tls_maximum_protocol_version) ?? DEFAULT_BOUNDS;
}

/** envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher. */
const sanMatcher = z.strictObject({
  san_type: envoyEnum(["DNS", "URI", "EMAIL", "IP_ADDRESS"]),
  matcher: stringMatcher,
  ...notSupportedFields(["oid"]),
});

/** The parsed form of a SubjectAltNameMatcher. */
export type SanMatcherConfig = z.output<typeof sanMatcher>;

/** envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext (upstream verification). */
export const validationContext = z.strictObject({
  trusted_ca: z.optional(dataSource),
  match_typed_subject_alt_names: z._default(z.array(sanMatcher), []),
  /** Deprecated form: each matcher applies to every SAN type. */
  match_subject_alt_names: z._default(z.array(stringMatcher), []),
  /** Hex SHA-256 of the peer's DER certificate (64 digits, or 95 with colons). */
  verify_certificate_hash: z._default(
    z.array(
      z.string().check(z.refine((h) => certificateHashHex(h) !== undefined, {
        error: (i) => `Invalid hex-encoded SHA-256 ${i.input}`,
      })),
    ),
    [],
  ),
  /** Base64 SHA-256 of the peer's DER SubjectPublicKeyInfo. */
  verify_certificate_spki: z._default(
    z.array(
      z.string().check(z.refine((h) => spkiHashBytes(h) !== undefined, {
        error: (i) => `Invalid base64-encoded SHA-256 ${i.input}`,
      })),
    ),
    [],
  ),
  /** PEM certificate revocation lists (checked by nuncio on the chain the runtime verified). */
  crl: z.optional(dataSource),
  only_verify_leaf_cert_crl: z._default(z.boolean(), false),
  trust_chain_verification: z._default(
    envoyEnum(["VERIFY_TRUST_CHAIN", "ACCEPT_UNTRUSTED"]),
    "VERIFY_TRUST_CHAIN",
  ),
  ...notSupportedFields([
    "watched_directory",
    "require_signed_certificate_timestamp",
    "allow_expired_certificate",
    "custom_validator_config",
    "max_verify_depth",
    "system_root_certs",
    "ca_certificate_provider_instance",
    "custom_signer",
  ]),
}).check(z.superRefine((v, ctx) => {
  if (v.crl !== undefined && v.trusted_ca === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["crl"],
      message: `Failed to load CRL from ${v.crl.filename ?? "<inline>"} without trusted CA`,
    });
  }
}));

/** Lower-case hex of a verify_certificate_hash entry (colons removed), or undefined when malformed. */
export function certificateHashHex(h: string): string | undefined {
  const hex = h.length === 95 ? h.replaceAll(":", "") : h;
  return /^[0-9a-fA-F]{64}$/.test(hex) ? hex.toLowerCase() : undefined;
}

/** The 32 bytes of a verify_certificate_spki entry as lower-case hex, or undefined when malformed. */
export function spkiHashBytes(b64: string): string | undefined {
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    return undefined;
  }
  if (bin.length !== 32) return undefined;
  let hex = "";
  for (let i = 0; i < bin.length; i++) hex += bin.charCodeAt(i).toString(16).padStart(2, "0");
  return hex;
}

/** The parsed form of a CertificateValidationContext. */
export type ValidationContextConfig = z.output<typeof validationContext>;

/**
 * envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig: a Secret by name, fetched over SDS from
 * `sds_config`, or without it one of the bootstrap's `static_resources.secrets`.
 */
export const sdsSecretConfig = z.strictObject({
  name: z.string().check(z.minLength(1)),
  sds_config: z.optional(configSourceSchema),
});

/** The parsed form of an SdsSecretConfig. */
export type SdsSecretConfig = z.output<typeof sdsSecretConfig>;

/** envoy.extensions.transport_sockets.tls.v3.CommonTlsContext. */
const commonTlsContext = z.strictObject({
  tls_params: z.optional(tlsParams),
  tls_certificates: z._default(z.array(tlsCertificate), []),
  tls_certificate_sds_secret_configs: z._default(z.array(sdsSecretConfig), []),
  validation_context: z.optional(validationContext),
  validation_context_sds_secret_config: z.optional(sdsSecretConfig),
  alpn_protocols: z._default(z.array(z.string().check(z.minLength(1))), []),
  ...notSupportedFields([
    "tls_certificate_provider_instance",
    "tls_certificate_certificate_provider",
    "tls_certificate_certificate_provider_instance",
    "combined_validation_context",
    "validation_context_certificate_provider",
    "validation_context_certificate_provider_instance",
    "custom_handshaker",
    "key_log",
    "custom_tls_certificate_selector",
  ]),
});

/** envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext. */
export const downstreamTlsContext = z.strictObject({
  common_tls_context: commonTlsContext,
  /** Request and require a client certificate (with a trusted CA in the validation context, as Envoy). */
  require_client_certificate: z._default(z.boolean(), false),
  ...notSupportedFields([
    "disable_stateless_session_resumption",
    "disable_stateful_session_resumption",
    "require_sni",
    "session_ticket_keys",
    "session_ticket_keys_sds_secret_config",
    "session_timeout",
    "ocsp_staple_policy",
    "full_scan_certs_on_sni_mismatch",
    "prefer_client_ciphers",
  ]),
}).check(z.superRefine((c, ctx) => {
  const common = c.common_tls_context;
  const inline = common.tls_certificates.length;
  const sds = common.tls_certificate_sds_secret_configs.length;
  if (inline === 0 && sds === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["common_tls_context", "tls_certificates"],
      message: "A DownstreamTlsContext needs at least one certificate",
    });
  }
  if (inline > 0 && sds > 0) {
    // as Envoy: one source of certificates per context
    ctx.addIssue({
      code: "custom",
      path: ["common_tls_context", "tls_certificate_sds_secret_configs"],
      message: "Only one of tls_certificates and tls_certificate_sds_secret_configs may be set",
    });
  }
  if (common.validation_context && common.validation_context_sds_secret_config) {
    ctx.addIssue({
      code: "custom",
      path: ["common_tls_context", "validation_context_sds_secret_config"],
      message: "Only one of validation_context and validation_context_sds_secret_config may be set",
    });
  }
}));

/** The parsed form of a DownstreamTlsContext. */
export type DownstreamTlsConfig = z.output<typeof downstreamTlsContext>;

/** envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext. */
export const upstreamTlsContext = z.strictObject({
  common_tls_context: z._default(
    commonTlsContext,
    { tls_certificates: [], tls_certificate_sds_secret_configs: [], alpn_protocols: [] } as never,
  ),
  sni: z.optional(z.string().check(z.maxLength(255))),
  allow_renegotiation: z.optional(z.literal(false)),
  ...notSupportedFields([
    "max_session_keys",
    "enforce_rsa_key_usage",
    "auto_host_sni",
    "auto_sni_san_validation",
  ]),
}).check(z.superRefine((c, ctx) => {
  const common = c.common_tls_context;
  const certs = common.tls_certificates.length + common.tls_certificate_sds_secret_configs.length;
  if (certs > 1) {
    ctx.addIssue({
      code: "custom",
      path: [
        "common_tls_context",
        common.tls_certificates.length > 1 ? "tls_certificates" : "tls_certificate_sds_secret_configs",
      ],
      message: "Multiple TLS certificates are not supported for client contexts",
    });
  }
  if (common.validation_context && common.validation_context_sds_secret_config) {
    ctx.addIssue({
      code: "custom",
      path: ["common_tls_context", "validation_context_sds_secret_config"],
      message: "Only one of validation_context and validation_context_sds_secret_config may be set",
    });
  }
}));

/** The parsed form of an UpstreamTlsContext. */
export type UpstreamTlsConfig = z.output<typeof upstreamTlsContext>;

/** A resolved transport_socket: plain text or TLS with its side's context. */
export type TransportSocketConfig<T> = { kind: "raw" } | { kind: "tls"; config: T };

const anyTls = z.union([downstreamTlsContext, upstreamTlsContext]);

/** The registry entry of `envoy.transport_sockets.tls` (both contexts; the owning schema picks by @type). */
export const tlsTransportSocket: Extension<unknown, null> = {
  name: TLS_NAME,
  typeUrls: [DOWNSTREAM_TLS_TYPE, UPSTREAM_TLS_TYPE],
  category: "transport_socket",
  schema: anyTls,
  create: null,
};

/** The registry entry of `envoy.transport_sockets.raw_buffer`. */
export const rawBufferTransportSocket: Extension<unknown, null> = {
  name: RAW_BUFFER_NAME,
  typeUrls: [RAW_BUFFER_TYPE],
  category: "transport_socket",
  schema: z.strictObject({}),
  create: null,
};

/** The schema of a listener's (`downstream`) or a cluster's (`upstream`) `transport_socket`. */
export function transportSocketSchema<S extends "downstream" | "upstream">(
  side: S,
): z.ZodMiniType<TransportSocketConfig<S extends "downstream" ? DownstreamTlsConfig : UpstreamTlsConfig>> {
  const wantType = side === "downstream" ? DOWNSTREAM_TLS_TYPE : UPSTREAM_TLS_TYPE;
  const schema = side === "downstream" ? downstreamTlsContext : upstreamTlsContext;
  return z.pipe(
    z.strictObject({
      name: z.string().check(z.minLength(1)),
      typed_config: z.optional(z.looseObject({ "@type": z.string().check(z.minLength(1)) })),
    }),
    transformWithIssues((v, ctx) => {
      const typeUrl = v.typed_config?.["@type"];
      // a given @type decides (an unknown one is an error even under a known name), as in Envoy
      const ext = registry.find("transport_socket", typeUrl ? undefined : v.name, typeUrl) ??
        [tlsTransportSocket, rawBufferTransportSocket].find((e) =>
          typeUrl ? e.typeUrls.includes(typeUrl) : e.name === v.name
        );
      if (!ext) {
        ctx.addIssue({
          code: "custom",
          path: typeUrl ? ["typed_config", "@type"] : ["name"],
          message: `Unknown or unsupported transport socket "${typeUrl ?? v.name}"`,
        });
        return z.NEVER;
      }
      const { "@type": _t, ...rest } = v.typed_config ?? { "@type": "" };
      if (ext.name === RAW_BUFFER_NAME) {
        if (Object.keys(rest).length > 0) {
          ctx.addIssue({ code: "custom", path: ["typed_config"], message: "RawBuffer has no fields" });
          return z.NEVER;
        }
        return { kind: "raw" as const };
      }
      if (v.typed_config === undefined) {
        ctx.addIssue({
          code: "custom",
          message: `A TLS transport socket needs typed_config (${wantType.split(".").pop()})`,
        });
        return z.NEVER;
      }
      if (typeUrl !== wantType) {
        ctx.addIssue({
          code: "custom",
          path: ["typed_config", "@type"],
          message: `A ${side} transport socket needs ${wantType.split(".").pop()}`,
        });
        return z.NEVER;
      }
      const r = schema.safeParse(rest);
      if (!r.success) {
        for (const issue of r.error.issues) {
          ctx.addIssue({ code: "custom", path: ["typed_config", ...issue.path], message: issue.message });
        }
        return z.NEVER;
      }
      return { kind: "tls" as const, config: r.data };
    }),
  ) as never;
}

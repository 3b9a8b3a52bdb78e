/**
 * zod schemas for the transport sockets nuncio implements: `envoy.transport_sockets.tls` with
 * DownstreamTlsContext (listeners) and UpstreamTlsContext (clusters), and `envoy.transport_sockets.raw_buffer`.
 */
import { z } from "zod/mini";
import { stringMatcher } from "../config/common.ts";
import { configSourceSchema } from "../config/config_source.ts";
import { envoyEnum, notSupportedFields, transformWithIssues } from "../config/schema_util.ts";
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

const VERSIONS = ["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"] as const;

/** TlsParameters: the runtime (rustls) always speaks TLS 1.2 and 1.3, so only compatible bounds are accepted. */
const tlsParams = z.strictObject({
  tls_minimum_protocol_version: z._default(envoyEnum(VERSIONS), "TLS_AUTO").check(
    z.refine((v) => v !== "TLSv1_3", {
      message: "Field not supported by nuncio: the runtime cannot disable TLS 1.2 (minimum TLSv1_3)",
    }),
  ),
  tls_maximum_protocol_version: z._default(envoyEnum(VERSIONS), "TLS_AUTO").check(
    z.refine((v) => v === "TLS_AUTO" || v === "TLSv1_3", {
      message: "Field not supported by nuncio: the runtime cannot disable TLS 1.3 (maximum below TLSv1_3)",
    }),
  ),
  ...notSupportedFields(["cipher_suites", "ecdh_curves", "signature_algorithms", "compliance_policies"]),
});

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
  trust_chain_verification: z.optional(envoyEnum(["VERIFY_TRUST_CHAIN"])),
  ...notSupportedFields([
    "watched_directory",
    "verify_certificate_spki",
    "verify_certificate_hash",
    "require_signed_certificate_timestamp",
    "crl",
    "allow_expired_certificate",
    "custom_validator_config",
    "only_verify_leaf_cert_crl",
    "max_verify_depth",
    "system_root_certs",
    "ca_certificate_provider_instance",
    "custom_signer",
  ]),
});

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
  require_client_certificate: z.optional(z.literal(false, {
    error: "Field not supported by nuncio: client certificates cannot be requested by the runtime",
  })),
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
  for (const field of ["validation_context", "validation_context_sds_secret_config"] as const) {
    if (common[field]) {
      ctx.addIssue({
        code: "custom",
        path: ["common_tls_context", field],
        message: "Field not supported by nuncio: client certificate validation",
      });
    }
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
  for (const field of ["tls_certificates", "tls_certificate_sds_secret_configs"] as const) {
    if (common[field].length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["common_tls_context", field],
        message: "Field not supported by nuncio: upstream client certificates",
      });
    }
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

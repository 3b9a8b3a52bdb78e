/**
 * Config of envoy.filters.http.ext_authz (envoy.extensions.filters.http.ext_authz.v3.ExtAuthz and
 * ExtAuthzPerRoute). Envoy's field names and defaults; fields nuncio cannot honour (typed and route metadata,
 * mutation rules, per-route service overrides, retries, filter state) are rejected by name.
 */
import { z } from "zod/mini";
import { duration, stringMatcher, uint32 } from "../../../../config/common.ts";
import {
  envoyEnum,
  integer,
  notSupported,
  notSupportedFields,
  onlyValues,
} from "../../../../config/schema_util.ts";
import { parseFormat } from "../../../../http/routing/formatter.ts";
import { runtimeFeatureFlagSchema, runtimeFractionalPercentSchema } from "../../common/config.ts";

/**
 * The schemas, built the first time a config uses this extension: zod objects cost every isolate (main and
 * each worker) memory, and most bootstraps never name this extension.
 */
function build() {
  /** envoy.type.matcher.v3.ListStringMatcher. */
  const listStringMatcher = z.strictObject({
    patterns: z.array(stringMatcher).check(z.minLength(1)),
  });

  /** envoy.extensions.filters.http.ext_authz.v3.BufferSettings. */
  const bufferSettings = z.strictObject({
    max_request_bytes: uint32.check(z.minimum(1)),
    allow_partial_message: z._default(z.boolean(), false),
    pack_as_bytes: z._default(z.boolean(), false),
  });

  /** envoy.config.core.v3.GrpcService with envoy_grpc (the only client nuncio has). */
  const grpcService = z.strictObject({
    envoy_grpc: z.strictObject({
      cluster_name: z.string().check(z.minLength(1)),
      authority: z.optional(z.string()),
      ...notSupportedFields(["retry_policy", "max_receive_message_length", "skip_envoy_headers"]),
    }),
    timeout: z.optional(duration),
    ...notSupportedFields(["google_grpc", "initial_metadata", "retry_policy"]),
  });

  /** envoy.config.core.v3.HeaderValue of authorization_request.headers_to_add (values may use header formatters). */
  const headerValue = z.strictObject({
    key: z.string().check(z.minLength(1)),
    value: z._default(z.string(), ""),
    raw_value: notSupported,
  }).check(z.superRefine((v, ctx) => {
    try {
      parseFormat(v.value);
    } catch (e) {
      ctx.addIssue({ code: "custom", path: ["value"], message: (e as Error).message });
    }
  }));

  /** envoy.extensions.filters.http.ext_authz.v3.HttpService. */
  const httpService = z.strictObject({
    server_uri: z.strictObject({
      uri: z.string().check(z.minLength(1)),
      cluster: z.string().check(z.minLength(1)),
      timeout: duration,
    }),
    path_prefix: z._default(z.string(), ""),
    authorization_request: z.optional(z.strictObject({
      allowed_headers: z.optional(listStringMatcher),
      headers_to_add: z._default(z.array(headerValue), []),
    })),
    authorization_response: z.optional(z.strictObject({
      allowed_upstream_headers: z.optional(listStringMatcher),
      allowed_upstream_headers_to_append: z.optional(listStringMatcher),
      allowed_client_headers: z.optional(listStringMatcher),
      allowed_client_headers_on_success: z.optional(listStringMatcher),
      dynamic_metadata_from_headers: z.optional(listStringMatcher),
    })),
    retry_policy: notSupported,
  });

  const httpStatus = z.strictObject({ code: integer.check(z.minimum(100), z.maximum(599)) });

  /** The ExtAuthz message. */
  const extAuthzSchema = z.strictObject({
    grpc_service: z.optional(grpcService),
    http_service: z.optional(httpService),
    transport_api_version: z.optional(envoyEnum(["AUTO", "V2", "V3"])),
    failure_mode_allow: z._default(z.boolean(), false),
    failure_mode_allow_header_add: z._default(z.boolean(), false),
    with_request_body: z.optional(bufferSettings),
    clear_route_cache: z._default(z.boolean(), false),
    status_on_error: z.optional(httpStatus),
    validate_mutations: z._default(z.boolean(), false),
    filter_enabled: z.optional(runtimeFractionalPercentSchema),
    deny_at_disable: z.optional(runtimeFeatureFlagSchema),
    include_peer_certificate: z._default(z.boolean(), false),
    include_tls_session: z._default(z.boolean(), false),
    stat_prefix: z._default(z.string(), ""),
    allowed_headers: z.optional(listStringMatcher),
    disallowed_headers: z.optional(listStringMatcher),
    charge_cluster_response_stats: z._default(z.boolean(), true),
    encode_raw_headers: z._default(z.boolean(), false),
    max_denied_response_body_bytes: z._default(uint32, 0),
    enforce_response_header_limits: onlyValues(
      [false],
      "response headers from the service are never counted",
    ),
    enable_dynamic_metadata_ingestion: z._default(z.boolean(), true),
    metadata_context_namespaces: z._default(z.array(z.string()), []),
    ...notSupportedFields([
      // nuncio's dynamic metadata is untyped, and routes carry no metadata to send
      "typed_metadata_context_namespaces",
      "route_metadata_context_namespaces",
      "route_typed_metadata_context_namespaces",
      "filter_enabled_metadata",
      "bootstrap_metadata_labels_key",
      "decoder_header_mutation_rules",
      "filter_metadata",
      "emit_filter_state_stats",
    ]),
  }).check(z.superRefine((v, ctx) => {
    if ((v.grpc_service === undefined) === (v.http_service === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: v.grpc_service ? ["http_service"] : [],
        message: "Exactly one of grpc_service, http_service must be set",
      });
      return;
    }
    if (v.grpc_service && v.transport_api_version !== "V3") {
      // Envoy's Config::Utility::checkTransportVersion, which ext_authz runs for gRPC services
      ctx.addIssue({
        code: "custom",
        path: ["transport_api_version"],
        message:
          "V2 (and AUTO) xDS transport protocol versions are deprecated: set transport_api_version: V3",
      });
    } else if (v.transport_api_version === "V2") {
      ctx.addIssue({ code: "custom", path: ["transport_api_version"], message: "Only V3 is supported" });
    }
    if (v.http_service?.authorization_request?.allowed_headers && v.allowed_headers) {
      ctx.addIssue({
        code: "custom",
        path: ["allowed_headers"],
        message: "Invalid duplicate configuration for allowed_headers",
      });
    }
  }));

  /** envoy.extensions.filters.http.ext_authz.v3.CheckSettings. */
  const checkSettings = z.strictObject({
    context_extensions: z._default(z.record(z.string(), z.string()), {}),
    disable_request_body_buffering: z._default(z.boolean(), false),
    with_request_body: z.optional(bufferSettings),
    ...notSupportedFields(["grpc_service", "http_service"]),
  }).check(z.superRefine((v, ctx) => {
    if (v.disable_request_body_buffering && v.with_request_body) {
      ctx.addIssue({
        code: "custom",
        path: ["with_request_body"],
        message: "Only one of disable_request_body_buffering or with_request_body can be set",
      });
    }
  }));

  /** The ExtAuthzPerRoute message: exactly one of `disabled` or `check_settings`. */
  const extAuthzPerRouteSchema = z.strictObject({
    disabled: z.optional(z.boolean()),
    check_settings: z.optional(checkSettings),
  }).check(z.refine((v) => (v.disabled !== undefined) !== (v.check_settings !== undefined), {
    message: "Exactly one of disabled, check_settings must be set",
  }));

  return { listStringMatcher, bufferSettings, extAuthzSchema, extAuthzPerRouteSchema };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;
const schemas = (): Schemas => built ??= build();

/** See build(). */
export const listStringMatcher: Schemas["listStringMatcher"] = z.lazy(() =>
  schemas().listStringMatcher
) as unknown as Schemas["listStringMatcher"];

/** See build(). */
export const bufferSettings: Schemas["bufferSettings"] = z.lazy(() =>
  schemas().bufferSettings
) as unknown as Schemas["bufferSettings"];

/** See build(). */
export const extAuthzSchema: Schemas["extAuthzSchema"] = z.lazy(() =>
  schemas().extAuthzSchema
) as unknown as Schemas["extAuthzSchema"];

/** See build(). */
export const extAuthzPerRouteSchema: Schemas["extAuthzPerRouteSchema"] = z.lazy(() =>
  schemas().extAuthzPerRouteSchema
) as unknown as Schemas["extAuthzPerRouteSchema"];

/** The parsed form of a ListStringMatcher. */
export type ListStringMatcherConfig = z.infer<Schemas["listStringMatcher"]>;

/** The parsed BufferSettings. */
export type BufferSettingsConfig = z.infer<Schemas["bufferSettings"]>;

/** The parsed ExtAuthz config. */
export type ExtAuthzConfig = z.infer<Schemas["extAuthzSchema"]>;

/** The parsed ExtAuthzPerRoute config. */
export type ExtAuthzPerRouteConfig = z.infer<Schemas["extAuthzPerRouteSchema"]>;

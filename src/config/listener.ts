/** The envoy.config.listener.v3.Listener subset nuncio implements. */
import { z } from "zod/mini";
import type { ChainMatch } from "../transport/chain_select.ts";
import { findDuplicateMatch } from "../transport/chain_select.ts";
import { transportSocketSchema } from "../transport/tls_config.ts";
import { address, duration, uint32 } from "./common.ts";
import { typedExtension } from "./extension_ref.ts";
import {
  envoyEnum,
  integer,
  notSupported,
  notSupportedFields,
  onlyValues,
  transformWithIssues,
} from "./schema_util.ts";
import { NOT_SUPPORTED } from "./errors.ts";
import {
  PROXY_PROTOCOL_NAME,
  PROXY_PROTOCOL_TYPE,
  type ProxyProtocolConfig,
  proxyProtocolSchema,
} from "../listener/proxy_protocol.ts";
import { sockoptUnavailable } from "../transport/sockopt.ts";

const SERVER_NAME_RE = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** envoy.config.listener.v3.FilterChainMatch: destination port, SNI, transport and application protocols. */
export const filterChainMatchSchema = z.pipe(
  z.strictObject({
    destination_port: z.optional(integer.check(z.minimum(1), z.maximum(65535))),
    server_names: z._default(
      z.array(
        z.pipe(z.string().check(z.minLength(1)), z.transform((n) => n.toLowerCase())).check(
          z.refine((n) => SERVER_NAME_RE.test(n), {
            message: 'Invalid server name (expected "host.example.com" or "*.example.com")',
          }),
        ),
      ),
      [],
    ),
    transport_protocol: z._default(z.enum(["", "tls", "raw_buffer"]), ""),
    application_protocols: z._default(z.array(z.string().check(z.minLength(1))), []),
    ...notSupportedFields([
      "prefix_ranges",
      "address_suffix",
      "suffix_len",
      "direct_source_prefix_ranges",
      "source_type",
      "source_prefix_ranges",
      "source_ports",
    ]),
  }),
  z.transform((m): ChainMatch => ({
    destinationPort: m.destination_port,
    serverNames: m.server_names,
    transportProtocol: m.transport_protocol,
    applicationProtocols: m.application_protocols,
  })),
);

const NO_MATCH: ChainMatch = { serverNames: [], transportProtocol: "", applicationProtocols: [] };

const TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
const ORIGINAL_DST = "envoy.extensions.filters.listener.original_dst.v3.OriginalDst";
const PROXY_PROTOCOL = PROXY_PROTOCOL_TYPE.slice(PROXY_PROTOCOL_TYPE.lastIndexOf("/") + 1);

/** A parsed listener filter (the ones nuncio has, in configuration order). */
export type ListenerFilterConfig =
  | { kind: "tls_inspector" }
  | { kind: "proxy_protocol"; config: ProxyProtocolConfig }
  | { kind: "original_dst" };

/**
 * A listener filter, resolved by its @type (the message name after the last "/"), else its name:
 * tls_inspector (SNI/ALPN inspection also runs implicitly when a chain needs it), proxy_protocol and
 * original_dst (SO_ORIGINAL_DST through libc, transport/sockopt.ts).
 */
const listenerFilterSchema = z.pipe(
  z.strictObject({
    name: z.string().check(z.minLength(1)),
    typed_config: z.optional(z.looseObject({ "@type": z.string().check(z.minLength(1)) })),
    ...notSupportedFields(["filter_disabled", "config_discovery"]),
  }),
  transformWithIssues((f, ctx): ListenerFilterConfig => {
    const { "@type": t, ...fields } = f.typed_config ?? {};
    const type = t === undefined ? undefined : t.slice(t.lastIndexOf("/") + 1);
    const is = (message: string, name: string) => type !== undefined ? type === message : f.name === name;
    const where = t !== undefined ? ["typed_config", "@type"] : ["name"];
    if (is(TLS_INSPECTOR, "envoy.filters.listener.tls_inspector")) {
      for (const k of Object.keys(fields)) {
        if (k !== "initial_read_buffer_size") {
          ctx.addIssue({ code: "custom", path: ["typed_config", k], message: NOT_SUPPORTED });
        }
      }
      return { kind: "tls_inspector" };
    }
    if (is(PROXY_PROTOCOL, PROXY_PROTOCOL_NAME)) {
      const r = proxyProtocolSchema.safeParse(fields);
      if (r.success) return { kind: "proxy_protocol", config: r.data };
      for (const i of r.error.issues) {
        ctx.addIssue({ code: "custom", path: ["typed_config", ...i.path], message: i.message });
      }
      return { kind: "tls_inspector" };
    }
    if (is(ORIGINAL_DST, "envoy.filters.listener.original_dst")) {
      for (const [k, v] of Object.entries(fields)) {
        // traffic_direction only selects the Windows redirect record; Linux reads SO_ORIGINAL_DST either way
        if (
          k === "traffic_direction" && ["UNSPECIFIED", "INBOUND", "OUTBOUND", 0, 1, 2].includes(v as string)
        ) {
          continue;
        }
        ctx.addIssue({ code: "custom", path: ["typed_config", k], message: NOT_SUPPORTED });
      }
      const why = sockoptUnavailable();
      if (why !== "") ctx.addIssue({ code: "custom", path: where, message: `${NOT_SUPPORTED} here: ${why}` });
      return { kind: "original_dst" };
    }
    ctx.addIssue({
      code: "custom",
      path: where,
      message: `Unknown or unsupported listener filter "${t ?? f.name}"`,
    });
    return { kind: "tls_inspector" };
  }),
);

/** envoy.config.listener.v3.FilterChain. */
export const filterChainSchema = z.strictObject({
  name: z.optional(z.string()),
  filter_chain_match: z._default(filterChainMatchSchema, NO_MATCH as never),
  filters: z._default(z.array(typedExtension("network_filter")), []),
  transport_socket: z.optional(transportSocketSchema("downstream")),
  ...notSupportedFields([
    "transport_socket_connect_timeout",
    "use_proxy_proto",
    "metadata",
    "on_demand_configuration",
  ]),
}).check(z.superRefine((chain, ctx) => {
  const filters = chain.filters;
  if (filters.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["filters"],
      message: "A filter chain needs a terminal network filter (tcp_proxy or http_connection_manager)",
    });
    return;
  }
  filters.forEach((f, i) => {
    // an entry that failed its own schema was reported already (zod still runs this check)
    if (f?.ext?.name === undefined) return;
    const terminal = f.ext.terminal === true;
    const last = i === filters.length - 1;
    if (terminal && !last) {
      ctx.addIssue({
        code: "custom",
        path: ["filters", i],
        message: `Terminal filter ${f.ext.name} must be the last filter in a network filter chain`,
      });
    } else if (!terminal && last) {
      ctx.addIssue({
        code: "custom",
        path: ["filters", i],
        message: `Non-terminal filter ${f.ext.name} is the last filter in a network filter chain`,
      });
    }
  });
}));

/** The parsed form of a FilterChain. */
export type FilterChainConfig = z.output<typeof filterChainSchema>;

const ONE_MIB = 1024 * 1024;

/** envoy.config.listener.v3.Listener; `name` defaults to "<address>_<port>" as in Envoy's stat names. */
export const listenerSchema = z.pipe(
  z.strictObject({
    name: z.optional(z.string().check(z.minLength(1))),
    address,
    stat_prefix: z.optional(z.string()),
    filter_chains: z._default(z.array(filterChainSchema), []),
    /** Used when no filter chain matches (its filter_chain_match is ignored, as in Envoy). */
    default_filter_chain: z.optional(filterChainSchema),
    per_connection_buffer_limit_bytes: z._default(uint32, ONE_MIB),
    listener_filters: z._default(z.array(listenerFilterSchema), []),
    listener_filters_timeout: z._default(duration, 15_000),
    continue_on_listener_filters_timeout: z.optional(z.literal(false, {
      error: "Field not supported by nuncio: a connection is closed when inspection times out",
    })),
    // listener-level access logs (one entry per connection) are not emitted: a non-empty list is an error
    access_log: z._default(
      z.array(typedExtension("access_logger")).check(z.maxLength(0, {
        error:
          "Field not supported by nuncio: listener access logs (use the connection manager's or tcp_proxy's)",
      })),
      [],
    ),
    enable_reuse_port: onlyValues([true], "nuncio always shares ports with reusePort"),
    drain_type: z._default(
      envoyEnum(["DEFAULT", "MODIFY_ONLY"]).check(z.refine((t) => t === "DEFAULT", {
        error: "Field not supported by nuncio: only DEFAULT (every listener drains on shutdown)",
      })),
      "DEFAULT",
    ),
    // informational in Envoy (tracing, Windows original_dst, Wasm/CEL attributes), none of which nuncio has
    traffic_direction: z._default(envoyEnum(["UNSPECIFIED", "INBOUND", "OUTBOUND"]), "UNSPECIFIED"),
    // Deno.listen takes no backlog
    tcp_backlog_size: notSupported,
    /** Hands connections the original_dst (or proxy_protocol) filter restored to the listener bound there. */
    use_original_dst: z._default(z.boolean(), false),
    /** false: the listener binds nothing and only serves connections another listener hands off. */
    bind_to_port: z._default(z.boolean(), true),
    connection_balance_config: notSupported,
    ...notSupportedFields([
      "additional_addresses",
      "filter_chain_matcher",
      "metadata",
      "deprecated_v1",
      "transparent",
      "freebind",
      "socket_options",
      "tcp_fast_open_queue_length",
      "udp_listener_config",
      "api_listener",
      "reuse_port",
      "max_connections_to_accept_per_socket_event",
      "internal_listener",
      "enable_mptcp",
      "ignore_global_conn_limit",
      "bypass_overload_manager",
      "fcds_config",
    ]),
  }).check(z.superRefine((l, ctx) => {
    if (l.filter_chains.length === 0 && l.default_filter_chain === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["filter_chains"],
        message: "A listener needs at least one filter chain",
      });
    }
    // the PROXY header is read once, before every other listener filter
    for (const kind of ["proxy_protocol", "original_dst"]) {
      const at = l.listener_filters.flatMap((f, i) => f?.kind === kind ? [i] : []);
      if (at.length > 1) {
        ctx.addIssue({
          code: "custom",
          path: ["listener_filters", at[1]],
          message: `${NOT_SUPPORTED}: one ${kind} listener filter per listener`,
        });
      }
    }
    const dup = findDuplicateMatch(l.filter_chains.map((c) => c.filter_chain_match));
    if (dup) ctx.addIssue({ code: "custom", path: ["filter_chains", dup.index], message: dup.message });
  })),
  z.transform((l) => ({
    ...l,
    name: l.name ?? defaultListenerName(l.address.socket_address),
  })),
);

/** The parsed form of a Listener (name always set). */
export type ListenerConfig = z.output<typeof listenerSchema>;

/** Envoy's address-derived name, e.g. "0.0.0.0_10000" (also the `listener.<name>.` stats prefix). */
export function defaultListenerName(a: { address: string; port_value: number }): string {
  return `${a.address}_${a.port_value}`;
}

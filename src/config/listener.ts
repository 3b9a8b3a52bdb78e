/** The envoy.config.listener.v3.Listener subset nuncio implements. */
import { z } from "zod/mini";
import type { ChainMatch } from "../transport/chain_select.ts";
import { findDuplicateMatch } from "../transport/chain_select.ts";
import { transportSocketSchema } from "../transport/tls_config.ts";
import { address, duration, uint32 } from "./common.ts";
import { typedExtension } from "./extension_ref.ts";
import { envoyEnum, integer, notSupported, notSupportedFields, onlyValues } from "./schema_util.ts";

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

/** The tls_inspector listener filter (SNI/ALPN inspection also runs implicitly when a chain needs it). */
const listenerFilterSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  typed_config: z.optional(z.looseObject({ "@type": z.string().check(z.minLength(1)) })),
}).check(z.superRefine((f, ctx) => {
  const t = f.typed_config?.["@type"];
  const ok = t
    ? t === "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
    : f.name === "envoy.filters.listener.tls_inspector";
  if (!ok) {
    ctx.addIssue({
      code: "custom",
      path: t ? ["typed_config", "@type"] : ["name"],
      message: `Unknown or unsupported listener filter "${t ?? f.name}"`,
    });
    return;
  }
  for (const k of Object.keys(f.typed_config ?? {})) {
    if (k !== "@type" && k !== "initial_read_buffer_size") {
      ctx.addIssue({ code: "custom", path: ["typed_config", k], message: "Field not supported by nuncio" });
    }
  }
}));

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
    filter_chains: z.array(filterChainSchema).check(z.minLength(1, {
      error: "A listener needs at least one filter chain",
    })),
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
    connection_balance_config: notSupported,
    ...notSupportedFields([
      "additional_addresses",
      "filter_chain_matcher",
      "use_original_dst",
      "default_filter_chain",
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
      "bind_to_port",
      "internal_listener",
      "enable_mptcp",
      "ignore_global_conn_limit",
      "bypass_overload_manager",
      "fcds_config",
    ]),
  }).check(z.superRefine((l, ctx) => {
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

/**
 * `GET /debug/route`: how a request would be routed, explained. Works from configuration on the admin's thread
 * (with workers the main thread holds no listeners or route tables, so the listener's route config is compiled
 * here on demand, with the data path's own compiler and matchers): listener, filter chain, virtual host (every
 * one considered and why it lost), each route tried with why it failed, the cluster (weighted: which and why)
 * and a preview of the host the load balancer would pick, made by a throw-away balancer of the cluster's policy
 * over the cluster's current hosts and health, so no live balancer state moves.
 */
import type { Context } from "hono";
import type { ListenerConfig } from "../config/listener.ts";
import { HeaderMap } from "../http/headers.ts";
import type { RouteConfiguration } from "../http/routing/config.ts";
import { explainRoute, type RouteExplanation } from "../http/routing/explain.ts";
import { type CompiledRouteTable, compileRouteTable } from "../http/routing/table.ts";
import type { RouteContext, RouteRequest } from "../http/routing/types.ts";
import { ChainSelector, type ConnectionFacts, explainChain } from "../transport/chain_select.ts";
import type { ClusterManager } from "../upstream/types.ts";
import { previewHost } from "./host_preview.ts";
import type { AdminEndpoint } from "./types.ts";

/** A listener as configured now, with the address it is bound to. */
export interface ExplainListener {
  config: ListenerConfig;
  /** "ip:port" as bound (the real port when configured with 0); the configured one when unknown. */
  address: string;
}

/** What /debug/route reads from the server. */
export interface RouteExplainSource {
  /** Listeners serving now (static and dynamic), parsed. */
  listeners(): Promise<ExplainListener[]>;
  /** An RDS route configuration by name, parsed; undefined when it has not arrived. */
  routeConfig(name: string): Promise<RouteConfiguration | undefined>;
  /** The cluster manager of this thread (the one owning health), undefined before start. */
  clusterManager(): ClusterManager | undefined;
}

const HCM = "envoy.filters.network.http_connection_manager";

interface HcmLike {
  stat_prefix: string;
  route_config?: RouteConfiguration;
  rds?: { route_config_name: string };
  http_filters: { name: string }[];
  strip_any_host_port?: boolean;
  strip_matching_host_port?: boolean;
}

/** The query of a /debug/route request. */
export interface ExplainQuery {
  authority: string;
  path: string;
  method: string;
  headers: [string, string][];
  listener?: string;
  /** Connection facts for filter chain selection. */
  sni: string;
  alpn: string[];
  transport?: string;
  /** Downstream address for hash policies (default 127.0.0.1). */
  source: string;
}

/** Parses the query; a string is the 400 message. */
export function parseExplainQuery(params: URLSearchParams): ExplainQuery | string {
  const headers: [string, string][] = [];
  for (const h of params.getAll("header")) {
    const i = h.indexOf(":", h.startsWith(":") ? 1 : 0);
    if (i <= 0) return `Bad header "${h}" (want header=name:value)`;
    headers.push([h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()]);
  }
  const path = params.get("path") ?? "/";
  if (!path.startsWith("/")) return `Bad path "${path}" (must start with /)`;
  return {
    authority: params.get("authority") ?? headers.find(([n]) => n === "host" || n === ":authority")?.[1] ??
      "",
    path,
    method: (params.get("method") ?? "GET").toUpperCase(),
    headers,
    listener: params.get("listener") ?? undefined,
    sni: (params.get("sni") ?? "").toLowerCase(),
    alpn: (params.get("alpn") ?? "").split(",").filter((s) => s !== ""),
    transport: params.get("transport") ?? undefined,
    source: params.get("source") ?? "127.0.0.1",
  };
}

function portOf(address: string): number {
  return Number(/:(\d+)$/.exec(address)?.[1] ?? 0);
}

/** Picks the listener named (or bound at an address / port) by `want`; else the first HTTP listener. */
function pickListener(
  all: ExplainListener[],
  want: string | undefined,
): { l: ExplainListener; reason: string } | string {
  if (want !== undefined) {
    const byName = all.find((l) => l.config.name === want);
    if (byName) return { l: byName, reason: `named '${want}'` };
    const port = /^\d+$/.test(want) ? want : /^:(\d+)$/.exec(want)?.[1];
    const byAddr = all.find((l) =>
      port !== undefined ? portOf(l.address) === Number(port) : l.address === want ||
        `${l.config.address.socket_address.address}:${l.config.address.socket_address.port_value}` === want
    );
    if (byAddr) return { l: byAddr, reason: `bound at ${byAddr.address} (asked: ${want})` };
    return `No listener named or bound at "${want}" (listeners: ${
      all.map((l) => `${l.config.name} ${l.address}`).join(", ") || "none"
    })`;
  }
  const http = all.find((l) =>
    [...l.config.filter_chains, ...(l.config.default_filter_chain ? [l.config.default_filter_chain] : [])]
      .some((c) => c.filters.some((f) => f.ext.name === HCM))
  );
  if (!http) return "No listener has an http_connection_manager; name one with ?listener=";
  return { l: http, reason: "no ?listener= given: the first listener with an http_connection_manager" };
}

/** Why chain `i` was not chosen (a mismatching criterion, else a more specific chain won). */
function chainMismatch(
  m: ConnectionFacts,
  c: ListenerConfig["filter_chains"][number]["filter_chain_match"],
): string {
  if (c.destinationPort !== undefined && c.destinationPort !== m.port) {
    return `destination_port ${c.destinationPort} != ${m.port}`;
  }
  if (
    c.serverNames.length > 0 &&
    !c.serverNames.some((n) => n === m.sni || (n.startsWith("*") && m.sni.endsWith(n.slice(1))))
  ) {
    return `server_names [${c.serverNames.join(", ")}] do not match SNI '${m.sni}'`;
  }
  if (c.transportProtocol !== "" && c.transportProtocol !== m.transport) {
    return `transport_protocol ${c.transportProtocol} != ${m.transport}`;
  }
  if (c.applicationProtocols.length > 0 && !c.applicationProtocols.some((p) => m.alpn.includes(p))) {
    return `application_protocols [${c.applicationProtocols.join(", ")}] not offered (ALPN [${
      m.alpn.join(", ")
    }])`;
  }
  return "matches, but a more specific chain was chosen";
}

const tables = new WeakMap<RouteConfiguration, CompiledRouteTable>();

/** The compiled table of a parsed route config (compiled once per config object). */
function tableFor(rc: RouteConfiguration): CompiledRouteTable {
  let t = tables.get(rc);
  if (!t) tables.set(rc, t = compileRouteTable(rc));
  return t;
}

/** Answers one /debug/route question (JSON-ready); a string is a 400 message. */
export async function explainRequest(
  src: RouteExplainSource,
  q: ExplainQuery,
): Promise<Record<string, unknown> | string> {
  const picked = pickListener(await src.listeners(), q.listener);
  if (typeof picked === "string") return picked;
  const { l, reason: listenerReason } = picked;
  const cfg = l.config;
  const transport = q.transport ?? (q.sni !== "" ? "tls" : "raw_buffer");
  const facts: ConnectionFacts = { port: portOf(l.address), sni: q.sni, transport, alpn: q.alpn };
  const matches = cfg.filter_chains.map((c) => c.filter_chain_match);
  let idx = cfg.filter_chains.length > 0 ? new ChainSelector(matches).select(facts) : -1;
  const chains = cfg.filter_chains.map((c, i) => ({
    name: c.name ?? `chain_${i}`,
    selected: i === idx,
    reason: i === idx
      ? explainChain(c.filter_chain_match, facts)
      : chainMismatch(facts, c.filter_chain_match),
  }));
  let chain = idx >= 0 ? cfg.filter_chains[idx] : undefined;
  if (!chain && cfg.default_filter_chain) {
    chain = cfg.default_filter_chain;
    idx = -2;
    chains.push({
      name: chain.name ?? "default",
      selected: true,
      reason: "no filter chain matched: default_filter_chain",
    });
  }
  const out: Record<string, unknown> = {
    request: { authority: q.authority, path: q.path, method: q.method, headers: q.headers },
    listener: { name: cfg.name, address: l.address, reason: listenerReason },
    connection: facts,
    filter_chains: chains,
  };
  if (!chain) {
    out.result = "no filter chain matches: the connection would be closed";
    return out;
  }
  const hcmRef = chain.filters.find((f) => f.ext.name === HCM);
  if (!hcmRef) {
    out.result = `the chosen chain has no http_connection_manager (network filters: ${
      chain.filters.map((f) => f.name).join(", ")
    })`;
    return out;
  }
  const hcm = hcmRef.config as HcmLike;
  let rc = hcm.route_config;
  const hcmOut: Record<string, unknown> = {
    stat_prefix: hcm.stat_prefix,
    http_filters: hcm.http_filters.map((f) => f.name),
    route_config: rc ? `inline '${rc.name}'` : `rds '${hcm.rds?.route_config_name}'`,
  };
  out.http_connection_manager = hcmOut;
  if (!rc && hcm.rds) {
    rc = await src.routeConfig(hcm.rds.route_config_name);
    if (!rc) {
      out.result =
        `route config '${hcm.rds.route_config_name}' has not arrived from RDS (404 NR until it does)`;
      return out;
    }
  }
  let authority = q.authority;
  if (hcm.strip_any_host_port) {
    const stripped = authority.replace(/:\d+$/, "");
    if (stripped !== authority) {
      hcmOut.host_rewritten = `strip_any_host_port: '${authority}' -> '${stripped}'`;
    }
    authority = stripped;
  } else if (hcm.strip_matching_host_port && portOf(authority) === facts.port && /:\d+$/.test(authority)) {
    const stripped = authority.replace(/:\d+$/, "");
    hcmOut.host_rewritten = `strip_matching_host_port: '${authority}' -> '${stripped}'`;
    authority = stripped;
  }
  const req: RouteRequest = {
    method: q.method,
    path: q.path,
    authority,
    scheme: transport === "tls" ? "https" : "http",
    headers: HeaderMap.from(q.headers.filter(([n]) => !n.startsWith(":") && n !== "host")),
  };
  const ex: RouteExplanation = explainRoute(tableFor(rc!), req);
  out.virtual_hosts = ex.virtualHosts;
  out.virtual_host = ex.virtualHost;
  out.routes = ex.routes;
  out.route = ex.route;
  out.route_config = ex.routeConfig;
  if (!ex.entry) {
    out.result = ex.virtualHost === null
      ? "no virtual host matches the authority: 404 NR"
      : "no route matches: 404 NR";
    return out;
  }
  if (ex.entry.kind !== "route") {
    out.result = ex.entry.kind === "redirect"
      ? `redirect ${JSON.stringify(ex.entry.redirect(req))}`
      : `direct_response ${ex.entry.status}`;
    return out;
  }
  out.cluster = ex.cluster;
  const name = ex.cluster?.name ?? "";
  const cm = src.clusterManager();
  const cluster = name === "" ? undefined : cm?.get(name);
  if (!cluster) {
    out.result = `cluster '${name}' does not exist: 503 NC`;
    return out;
  }
  const ctx: RouteContext = {
    remoteIp: q.source,
    remoteAddress: `${q.source}:0`,
    localAddress: l.address,
    upstreamHost: "",
    protocol: "HTTP/1.1",
    requestId: req.headers.get("x-request-id") ?? "",
  };
  out.host = previewHost(cluster, ex.entry.hash(req, ctx));
  out.result = `forwarded to cluster '${name}'`;
  return out;
}

/** The /debug/route admin endpoint over `src`. */
export function routeExplainEndpoint(src: RouteExplainSource): AdminEndpoint {
  return {
    path: "/debug/route",
    method: "GET",
    help:
      "explain how a request would be routed (?authority=&path=&method=&header=k:v&listener=name|address)",
    handler: async (c: Context) => {
      const q = parseExplainQuery(new URL(c.req.url).searchParams);
      const res = typeof q === "string" ? q : await explainRequest(src, q);
      if (typeof res === "string") return c.text(`${res}\n`, 400);
      return new Response(
        JSON.stringify(res, (_k, v) => typeof v === "bigint" ? v.toString() : v, 2) + "\n",
        {
          headers: { "content-type": "application/json" },
        },
      );
    },
  };
}

import "../registry/builtin.ts";
import assert from "node:assert/strict";
import type { ListenerConfig } from "../config/listener.ts";
import type { RouteConfiguration } from "../http/routing/config.ts";
import { parseResource } from "../server/xds_apply.ts";
import {
  type ExplainListener,
  explainRequest,
  parseExplainQuery,
  type RouteExplainSource,
} from "./route_explain.ts";

const HCM_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};

function hcm(prefix: string, routes: Record<string, unknown>) {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: { "@type": HCM_TYPE, stat_prefix: prefix, http_filters: [ROUTER], ...routes },
  };
}

function listener(raw: Record<string, unknown>, address: string): ExplainListener {
  const p = parseResource("listener", raw.name as string, raw);
  if (!p.ok) throw new Error(p.message);
  return { config: p.value as ListenerConfig, address };
}

const RC = {
  name: "dyn",
  virtual_hosts: [{
    name: "all",
    domains: ["*"],
    routes: [{ match: { prefix: "/" }, direct_response: { status: 204 } }],
  }],
};

function source(rds: boolean): RouteExplainSource {
  const inline = listener({
    name: "inline",
    address: { socket_address: { address: "127.0.0.1", port_value: 8080 } },
    filter_chains: [
      {
        name: "by-port",
        filter_chain_match: { destination_port: 9999 },
        filters: [hcm("p", { route_config: RC })],
      },
      { name: "any", filters: [hcm("a", { route_config: { ...RC, name: "inline-rc" } })] },
    ],
  }, "127.0.0.1:8080");
  const dynamic = listener({
    name: "rds",
    address: { socket_address: { address: "127.0.0.1", port_value: 8081 } },
    filter_chains: [{
      filters: [hcm("r", { rds: { route_config_name: "dyn", config_source: { ads: {} } } })],
    }],
  }, "127.0.0.1:8081");
  const parsed = parseResource("route", "dyn", RC);
  if (!parsed.ok) throw new Error(parsed.message);
  return {
    listeners: () => Promise.resolve([inline, dynamic]),
    routeConfig: (name) =>
      Promise.resolve(rds && name === "dyn" ? parsed.value as RouteConfiguration : undefined),
    clusterManager: () => undefined,
  };
}

const q = (s: string) => {
  const r = parseExplainQuery(new URLSearchParams(s));
  if (typeof r === "string") throw new Error(r);
  return r;
};

Deno.test("parseExplainQuery: headers, defaults and errors", () => {
  const r = q("path=/a&header=x-a:1&header=Host:h.com&method=post");
  assert.deepEqual(r.headers, [["x-a", "1"], ["host", "h.com"]]);
  assert.equal(r.authority, "h.com");
  assert.equal(r.method, "POST");
  assert.equal(
    parseExplainQuery(new URLSearchParams("header=novalue")),
    'Bad header "novalue" (want header=name:value)',
  );
  assert.equal(parseExplainQuery(new URLSearchParams("path=a")), 'Bad path "a" (must start with /)');
});

Deno.test("explainRequest: filter chain choice with reasons, direct responses", async () => {
  const ex = await explainRequest(source(true), q("listener=8080&authority=x")) as Record<string, unknown>;
  assert.deepEqual(
    (ex.filter_chains as { name: string; selected: boolean; reason: string }[]).map((
      c,
    ) => [c.name, c.selected]),
    [["by-port", false], ["any", true]],
  );
  assert.match((ex.filter_chains as { reason: string }[])[0].reason, /destination_port 9999 != 8080/);
  assert.equal(ex.route_config, "inline-rc");
  assert.equal(ex.result, "direct_response 204");
});

Deno.test("explainRequest: RDS route configs, and one that has not arrived", async () => {
  const ok = await explainRequest(source(true), q("listener=rds&authority=x")) as Record<string, unknown>;
  assert.equal(ok.route_config, "dyn");
  assert.deepEqual((ok.http_connection_manager as Record<string, unknown>).route_config, "rds 'dyn'");
  const missing = await explainRequest(source(false), q("listener=127.0.0.1:8081")) as Record<
    string,
    unknown
  >;
  assert.match(missing.result as string, /route config 'dyn' has not arrived from RDS/);
  assert.match(
    await explainRequest(source(true), q("listener=nope")) as string,
    /No listener named or bound at "nope" \(listeners: inline 127.0.0.1:8080, rds 127.0.0.1:8081\)/,
  );
});

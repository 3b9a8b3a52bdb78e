/**
 * Helpers for the dynamic listener (LDS) and route (RDS) tests: an in-process DataPlane with a short drain,
 * parsed Listener and RouteConfiguration resources, a free port, and a keep-alive HTTP/1.1 client loop.
 */
import { prepareExtensions } from "../src/registry/prepare.ts";
import "../src/registry/builtin.ts";
import { stringify } from "yaml";
import { z } from "zod/mini";
import { formatConfigError } from "../src/config/errors.ts";
import type { ListenerConfig } from "../src/config/listener.ts";
import { loadConfigText } from "../src/config/load.ts";
import { type RouteConfiguration, routeConfigurationSchema } from "../src/http/routing/config.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import { DataPlane } from "../src/server/data_plane.ts";

type Obj = Record<string, unknown>;

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

/** A port free right now on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A direct_response route config answering `body` with 200 on every path. */
export function directRoutes(name: string, body: string): Obj {
  return {
    name,
    virtual_hosts: [{
      name: "any",
      domains: ["*"],
      routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }],
    }],
  };
}

/** A Listener resource on 127.0.0.1:`port` with an HCM using `routes` (inline) or `rds` (by name). */
export function httpListenerResource(
  name: string,
  port: number,
  routes: { inline: Obj } | { rds: string },
): Obj {
  const hcm: Obj = {
    "@type": HCM,
    stat_prefix: name,
    http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
  };
  if ("inline" in routes) hcm.route_config = routes.inline;
  else hcm.rds = { config_source: { ads: {} }, route_config_name: routes.rds };
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }],
    }],
  };
}

/** Parses a Listener resource as the bootstrap loader does (throws with the errors). */
export function parseListener(resource: Obj): ListenerConfig {
  const loaded = loadConfigText(stringify({ static_resources: { listeners: [resource] } }), "lds.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map(formatConfigError).join("\n"));
  return loaded.bootstrap.static_resources.listeners[0];
}

/** Parses a RouteConfiguration resource. */
export function parseRoutes(resource: Obj): RouteConfiguration {
  return z.parse(routeConfigurationSchema, resource);
}

/** A started DataPlane from static listeners (resources) with the given LDS drain time. */
export async function startPlane(staticListeners: Obj[], drainTimeMs: number): Promise<DataPlane> {
  const loaded = loadConfigText(
    stringify({ static_resources: { listeners: staticListeners } }),
    "test.yaml",
    {
      crossCheck: checkClusterReferences,
    },
  );
  if (!loaded.ok) throw new Error(loaded.errors.map(formatConfigError).join("\n"));
  await prepareExtensions(loaded.bootstrap);
  const plane = new DataPlane(loaded.bootstrap, 0, undefined, true, { drainTimeMs });
  await plane.start(false);
  return plane;
}

/** What a keep-alive client loop saw. */
export interface LoopResult {
  /** Response bodies in order. */
  bodies: string[];
  /** Requests that got no complete response (errors, resets). */
  failures: string[];
  /** Connections opened. */
  connections: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Sends GET requests over keep-alive connections until `stop()` resolves, reconnecting after a response that
 * said `Connection: close` (as any HTTP/1.1 client does). Each request must get a complete response.
 */
export async function keepAliveLoop(port: number, stop: Promise<void>): Promise<LoopResult> {
  const out: LoopResult = { bodies: [], failures: [], connections: 0 };
  let stopped = false;
  stop.then(() => stopped = true);
  let conn: Deno.Conn | undefined;
  const buf = new Uint8Array(64 * 1024);
  while (!stopped) {
    try {
      if (conn === undefined) {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        out.connections++;
      }
      await conn.write(enc.encode("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
      let text = "";
      let body: string | undefined;
      let close = false;
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) throw new Error(`connection closed after ${text.length} bytes`);
        text += dec.decode(buf.subarray(0, n));
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) continue;
        const head = text.slice(0, end).toLowerCase();
        const len = Number(/content-length: *(\d+)/.exec(head)?.[1] ?? "0");
        if (text.length - end - 4 < len) continue;
        body = text.slice(end + 4, end + 4 + len);
        close = /connection: *close/.test(head);
        break;
      }
      out.bodies.push(body);
      if (close) {
        conn.close();
        conn = undefined;
      }
    } catch (e) {
      out.failures.push((e as Error).message);
      try {
        conn?.close();
      } catch {
        // gone
      }
      conn = undefined;
    }
  }
  conn?.close();
  return out;
}

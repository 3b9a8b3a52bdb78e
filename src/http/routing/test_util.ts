/** Helpers for the routing tests: parse + compile a config, build requests and contexts. */
import { HeaderMap } from "../headers.ts";
import { routeConfigurationSchema } from "./config.ts";
import type { FormatterContext } from "./formatter.ts";
import { type CompiledRouteTable, compileRouteTable, type CompileRouteTableOptions } from "./table.ts";
import type { RouteRequest } from "./types.ts";

/** Parses (throwing on errors) and compiles a route configuration. */
export function table(input: unknown, opts?: CompileRouteTableOptions): CompiledRouteTable {
  return compileRouteTable(routeConfigurationSchema.parse(input), opts);
}

/** A one-vhost config matching every domain with the given routes. */
export function oneHost(routes: unknown[], extra: Record<string, unknown> = {}): unknown {
  return { name: "rc", virtual_hosts: [{ name: "vh", domains: ["*"], routes, ...extra }] };
}

/** A request; headers as [name, value] pairs. */
export function req(
  path: string,
  opts: { authority?: string; method?: string; scheme?: string; headers?: [string, string][] } = {},
): RouteRequest {
  return {
    method: opts.method ?? "GET",
    path,
    authority: opts.authority ?? "example.com",
    scheme: opts.scheme ?? "http",
    headers: HeaderMap.from(opts.headers ?? []),
  };
}

/** A formatter context with fixed addresses. */
export function ctx(extra: Partial<FormatterContext> = {}): FormatterContext {
  return {
    remoteIp: "10.0.0.1",
    remoteAddress: "10.0.0.1:5555",
    localAddress: "10.0.0.2:8080",
    upstreamHost: "10.0.0.3:80",
    protocol: "HTTP/1.1",
    requestId: "rid",
    ...extra,
  };
}

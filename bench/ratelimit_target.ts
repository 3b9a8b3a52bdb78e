/**
 * The "nuncio ratelimit" bench target: the same HTTP path as the plain nuncio target (HCM -> router ->
 * STATIC cluster `origin`) with the global rate-limit filter in front of the router: the route's
 * `rate_limits` (remote_address) make one ShouldRateLimit call per request to the rate-limit service
 * embedded in the same process (bootstrap extension, in-memory counters, gRPC on nuncio's HTTP/2 codec)
 * through the STATIC cluster `rls`. With `--concurrency 1` the data plane shares the service's event loop, so
 * the filter's client calls it directly (src/ratelimit/local.ts) rather than over the loopback socket; every
 * request still makes one decision (`ratelimit.ok` counts them). The limit (10^9 per hour) never trips, so
 * every request reaches the origin: the latency against the plain target is what a rate-limited route adds.
 */

import type { Managed } from "./lib/proc.ts";
import type { TargetResult } from "./report.ts";
import {
  type Env,
  type NuncioLaunch,
  spawnNuncio,
  yamlAdmin,
  yamlHcmListener,
  yamlStaticCluster,
} from "./targets.ts";

/** Ports of the ratelimit target. */
export interface RatelimitPorts {
  admin: number;
  http: number;
  origin: number;
  /** gRPC port of the embedded rate-limit service. */
  rls: number;
}

/** The limits file: one remote_address limit that is never reached. */
export const BENCH_LIMITS = `domain: bench
descriptors:
  - key: remote_address
    rate_limit: { unit: hour, requests_per_unit: 1000000000 }
`;

/** The global rate-limit filter in front of the router, asking the embedded service over cluster `rls`. */
const RATELIMIT_FILTER = `          - name: envoy.filters.http.ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: bench
              timeout: 1s
              rate_limit_service:
                grpc_service: {envoy_grpc: {cluster_name: rls}}
                transport_api_version: V3
`;

/** nuncio bootstrap: an HTTP listener with envoy.filters.http.ratelimit, plus the embedded service. */
export function nuncioRatelimitConfig(ports: RatelimitPorts, limitsPath: string): string {
  return `${yamlAdmin(ports.admin)}bootstrap_extensions:
- name: nuncio.bootstrap.ratelimit_service
  typed_config:
    "@type": type.googleapis.com/nuncio.ratelimit.v1.EmbeddedRateLimitService
    limits_path: ${limitsPath}
    grpc_address: {socket_address: {address: 127.0.0.1, port_value: ${ports.rls}}}
    watch_interval: 0s
static_resources:
  listeners:
${
    yamlHcmListener("http", ports.http, {
      statPrefix: "bench",
      route: "{cluster: origin, rate_limits: [{actions: [{remote_address: {}}]}]}",
      filters: RATELIMIT_FILTER,
    })
  }  clusters:
${yamlStaticCluster("origin", ports.origin)}${yamlStaticCluster("rls", ports.rls)}`;
}

/** Starts the rate-limited nuncio with --concurrency 1; resolves once its HTTP listener and the RLS accept. */
export async function startNuncioRatelimit(
  env: Env,
  launch: NuncioLaunch,
  ports: RatelimitPorts,
  name = "nuncio-ratelimit",
): Promise<{ proc: Managed; http: number }> {
  const limits = `${env.dir}/${name}-limits.yaml`;
  Deno.writeTextFileSync(limits, BENCH_LIMITS);
  const proc = await spawnNuncio(env, launch, name, nuncioRatelimitConfig(ports, limits), [
    ports.rls,
    ports.http,
  ]);
  return { proc, http: ports.http };
}

/** Reads `cluster.origin.ratelimit.ok` from the admin /stats (proof the filter called the service). */
export async function ratelimitOkCount(adminPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=ratelimit`)).text();
  const m = /cluster\.origin\.ratelimit\.ok: (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Issue 5's latency line: what the rate-limited route adds over the plain one, measured in the same run
 * (c=1 p50/p99 from the single-connection run, req/s from the -c N rounds).
 */
export function formatRatelimitCost(
  limited: TargetResult | undefined,
  plain: TargetResult | undefined,
  okCalls: number,
): string {
  if (!limited?.c1 || !plain?.c1 || !limited.median || !plain.median) {
    return `ratelimit cost: not measured${limited?.error ? ` (${limited.error})` : ""}`;
  }
  const us = (v: number) => `${v >= 0 ? "+" : ""}${Math.round(v)}us`;
  return `ratelimit cost (route with envoy.filters.http.ratelimit vs without): c=1 p50 ` +
    `${us(limited.c1.p50Us - plain.c1.p50Us)} p99 ${us(limited.c1.p99Us - plain.c1.p99Us)} ` +
    `(${Math.round(limited.c1.p50Us)}/${Math.round(limited.c1.p99Us)}us vs ` +
    `${Math.round(plain.c1.p50Us)}/${Math.round(plain.c1.p99Us)}us); req/s ` +
    `${Math.round(limited.median.rps)} vs ${Math.round(plain.median.rps)} ` +
    `(${(limited.median.rps / plain.median.rps).toFixed(2)}x); ${okCalls} ShouldRateLimit calls answered OK`;
}

/**
 * The "nuncio resilient" bench target: the same HTTP path as the plain nuncio target (HCM -> router ->
 * STATIC cluster `origin`) with every resilience feature of issue 3 switched on at once: active HTTP
 * health checks, outlier detection, explicit circuit-breaker thresholds and a route retry policy. The
 * origin is healthy, so no retry, ejection or overflow actually happens: the ratio against the plain
 * target is the bookkeeping cost of having them configured.
 */

import type { Managed } from "./lib/proc.ts";
import {
  type Env,
  type NuncioLaunch,
  spawnNuncio,
  yamlAdmin,
  yamlHcmListener,
  yamlStaticCluster,
} from "./targets.ts";

/** Route action of the resilient target: a route timeout and a retry policy. */
const RESILIENT_ROUTE =
  "{cluster: origin, timeout: 15s, retry_policy: {retry_on: 'connect-failure,reset,5xx', " +
  "num_retries: 2, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}], " +
  "host_selection_retry_max_attempts: 3}}";

/** Cluster fields of the resilient target: health checks, outlier detection, breakers. */
const RESILIENT_CLUSTER = `    health_checks:
    - timeout: 1s
      interval: 1s
      unhealthy_threshold: 3
      healthy_threshold: 2
      http_health_check: {path: /}
    outlier_detection:
      consecutive_5xx: 5
      consecutive_gateway_failure: 5
      enforcing_consecutive_gateway_failure: 100
      interval: 1s
      base_ejection_time: 5s
      max_ejection_percent: 50
    circuit_breakers:
      thresholds:
      - {max_connections: 100000, max_pending_requests: 100000, max_requests: 100000, max_retries: 10}
`;

/** nuncio bootstrap: one HTTP listener whose route and cluster carry health checks, outlier detection, breakers and retries. */
export function nuncioResilientConfig(ports: { admin: number; http: number; origin: number }): string {
  return `${yamlAdmin(ports.admin)}static_resources:
  listeners:
${yamlHcmListener("http", ports.http, { statPrefix: "bench", route: RESILIENT_ROUTE })}  clusters:
${yamlStaticCluster("origin", ports.origin, RESILIENT_CLUSTER)}`;
}

/** Starts the resilient nuncio with --concurrency 1; resolves once its HTTP listener accepts. */
export async function startNuncioResilient(
  env: Env,
  launch: NuncioLaunch,
  ports: { admin: number; http: number; origin: number },
  name = "nuncio-resilient",
): Promise<{ proc: Managed; http: number }> {
  const proc = await spawnNuncio(env, launch, name, nuncioResilientConfig(ports), [ports.http]);
  return { proc, http: ports.http };
}

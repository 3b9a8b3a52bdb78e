/**
 * Issue 3's proof: three origin processes behind nuncio under a bounded, paced load (5,000 GETs over 20
 * keep-alive connections). One origin is SIGKILLed at ~1/3 of the load and restarted on the same port at
 * ~2/3. With `retry_on: connect-failure,reset,5xx`, active HTTP health checks, outlier detection and
 * circuit breakers configured, no client sees a failure, the dead host is taken out (ejected or marked by
 * the health checker) and it serves traffic again after it comes back.
 */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, staticCluster } from "./helpers.ts";
import { ADMIN, healthFlagsOf, startServer, waitFor } from "./health_helpers.ts";
import { OriginProcess, runLoad, statOf } from "./resilience_helpers.ts";

const TOTAL = 5000;
const CONNECTIONS = 20;
/** Per-connection pacing: 250 requests x 40 ms ~ 10 s, so each third lasts a few seconds. */
const INTERVAL_MS = 40;
/** Origins answer after 20 ms, so several requests are in flight on the origin when it is killed. */
const ORIGIN_DELAY_MS = 20;

function config(ports: number[]): string {
  const route = {
    match: { prefix: "/" },
    route: {
      cluster: "svc",
      timeout: "5s",
      retry_policy: {
        retry_on: "connect-failure,reset,5xx",
        num_retries: 3,
        retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
        host_selection_retry_max_attempts: 3,
      },
    },
  };
  return bootstrapYaml(
    [httpListener({ statPrefix: "fault", virtualHosts: [anyHost([route])] })],
    [staticCluster("svc", ports, {
      health_checks: [{
        timeout: "0.5s",
        interval: "0.1s",
        no_traffic_interval: "0.1s",
        unhealthy_threshold: 2,
        healthy_threshold: 2,
        http_health_check: { path: "/healthz" },
      }],
      outlier_detection: {
        consecutive_5xx: 3,
        consecutive_gateway_failure: 3,
        enforcing_consecutive_gateway_failure: 100,
        interval: "0.2s",
        base_ejection_time: "0.5s",
        max_ejection_time: "2s",
        max_ejection_percent: 50,
      },
      circuit_breakers: {
        thresholds: [{
          max_connections: 1000,
          max_pending_requests: 1000,
          max_requests: 1000,
          max_retries: 100,
        }],
      },
    })],
    { admin: ADMIN },
  );
}

Deno.test("resilience: an origin killed and restarted under load costs no client-visible failure", async () => {
  await using a = new OriginProcess("a", ORIGIN_DELAY_MS);
  await using b = new OriginProcess("b", ORIGIN_DELAY_MS);
  await using c = new OriginProcess("c", ORIGIN_DELAY_MS);
  await Promise.all([a.start(), b.start(), c.start()]);
  await using s = await startServer(config([a.port, b.port, c.port]));
  const hostC = `127.0.0.1:${c.port}`;
  await waitFor(
    "c healthy",
    async () => healthFlagsOf(await s.admin("/clusters"), "svc", hostC) === "healthy",
  );

  // Phases: 0 all up; 1 c killed; 2 c listening again; 3 /clusters shows c healthy again (recovered).
  let phase = 0;
  let killed: Promise<void> | null = null;
  let restarted: Promise<void> | null = null;
  const flagsWhileDead = new Set<string>();
  let watching = true;
  const watch = async () => {
    while (watching) {
      const f = healthFlagsOf(await s.admin("/clusters"), "svc", hostC) ?? "";
      if (phase === 1) flagsWhileDead.add(f);
      else if (phase === 2 && f === "healthy") phase = 3;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const watcher = watch();
  const onIssued = (n: number) => {
    if (n >= TOTAL / 3 && killed === null) {
      killed = c.kill().then(() => {
        phase = 1;
      });
    } else if (n >= (2 * TOTAL) / 3 && restarted === null && killed !== null) {
      restarted = killed.then(() => c.start()).then(() => {
        phase = 2;
      });
    }
  };
  const load = await runLoad({
    port: s.port,
    connections: CONNECTIONS,
    total: TOTAL,
    intervalMs: INTERVAL_MS,
    phase: () => phase,
    onIssued,
  });
  const phaseAtEnd = phase;
  watching = false;
  await killed;
  await restarted;
  await watcher;
  const stats = await s.admin("/stats");
  const detail = () =>
    `statuses ${JSON.stringify([...load.statuses])}, origins by phase ${
      JSON.stringify(load.originsByPhase.map((m) => Object.fromEntries(m)))
    }, flags while dead ${[...flagsWhileDead]}, ${load.elapsedMs} ms, failures ${load.failures}`;

  assert.equal(load.statuses.get(200), TOTAL, `every response is 200: ${detail()}`);
  assert.equal(load.statuses.size, 1, detail());
  assert.equal(phaseAtEnd, 3, `c recovered before the load ended: ${detail()}`);

  const ejected = statOf(stats, "cluster.svc.outlier_detection.ejections_enforced_total");
  const hcFailures = statOf(stats, "cluster.svc.health_check.failure");
  assert.ok(
    ejected >= 1 || [...flagsWhileDead].some((f) => f.includes("failed_active_hc")),
    `the dead host was ejected or marked by the health checker: ejections ${ejected}, ` +
      `hc failures ${hcFailures}, ${detail()}`,
  );
  assert.ok(
    [...flagsWhileDead].some((f) => f !== "healthy"),
    `/clusters flagged c while it was dead: ${detail()}`,
  );
  assert.ok(hcFailures >= 1, `the health checker saw the dead host: ${detail()}`);
  assert.ok(statOf(stats, "cluster.svc.upstream_rq_retry") >= 1, `retries happened: ${detail()}`);
  assert.ok(statOf(stats, "cluster.svc.upstream_rq_retry_success") >= 1, `retries succeeded: ${detail()}`);

  const before = load.originsByPhase[0];
  for (const o of ["a", "b", "c"]) {
    assert.ok((before.get(o) ?? 0) > 0, `${o} served before the kill: ${detail()}`);
  }
  assert.ok((load.originsByPhase[3]?.get("c") ?? 0) > 0, `c serves again after recovery: ${detail()}`);
  // While c was dead, a and b carried the load; at most the answers c wrote just before the kill (one
  // per connection) can still reach the client after it.
  assert.ok((load.originsByPhase[1]?.get("c") ?? 0) <= CONNECTIONS, detail());
  assert.ok(
    (load.originsByPhase[1]?.get("a") ?? 0) > 0 && (load.originsByPhase[1]?.get("b") ?? 0) > 0,
    detail(),
  );

  console.log(
    `resilience: ${load.elapsedMs} ms, retries ${statOf(stats, "cluster.svc.upstream_rq_retry")}, ` +
      `in-flight resets ${statOf(stats, "cluster.svc.upstream_rq_rx_reset")}, ` +
      `connect failures ${statOf(stats, "cluster.svc.upstream_cx_connect_fail")}, ` +
      `ejections ${ejected}, hc failures ${hcFailures}, ${detail()}`,
  );
});

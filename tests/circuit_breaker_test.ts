/** Circuit breakers end to end: max_requests, max_pending_requests, max_connections, max_retries, priorities,
 * track_remaining, and one limit shared by two data planes (workers) through the SharedArena. */
import assert from "node:assert/strict";
import { request, scriptedOrigin, startSharedPlanes, type Step } from "./fault_peers.ts";
import { anyHost, bootstrapYaml, httpListener, sleep, startProxy, staticCluster } from "./helpers.ts";

type Obj = Record<string, unknown>;

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

function config(port: number, thresholds: Obj[], routes?: Obj[]): string {
  return bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost(routes ?? [{ match: { prefix: "/" }, route: { cluster: "web" } }])],
    })],
    [staticCluster("web", [port], { circuit_breakers: { thresholds } })],
  );
}

const stall: Step[] = [{ stall: true }];
const CB = "cluster.web.circuit_breakers.default.";

Deno.test("circuit breakers", async (t) => {
  await t.step("max_requests: the overflow answers 503 UO with x-envoy-overloaded", async () => {
    await using origin = scriptedOrigin(stall);
    await using proxy = await startProxy(config(origin.port, [{ max_requests: 1 }]));
    const first = request(proxy.port(), "/");
    await waitFor(() => origin.inFlight === 1, "the first request");
    assert.equal(proxy.stat(CB + "rq_open"), 1);
    const r = await request(proxy.port(), "/");
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("x-envoy-overloaded"), "true");
    assert.equal(proxy.stat("cluster.web.upstream_rq_pending_overflow"), 1);
    origin.release();
    assert.equal((await first).status, 200);
    await waitFor(() => proxy.stat(CB + "rq_open") === 0, "rq_open to close");
    const logs = await proxy.log(2);
    assert.deepEqual(logs.map((l) => [l.code, l.flags]), [["503", "UO"], ["200", "-"]]);
  });

  await t.step("max_connections queues as pending; max_pending_requests overflows", async () => {
    await using origin = scriptedOrigin(stall);
    await using proxy = await startProxy(
      config(origin.port, [{ max_connections: 1, max_pending_requests: 1 }]),
    );
    const first = request(proxy.port(), "/a");
    await waitFor(() => origin.inFlight === 1, "the first request");
    assert.equal(proxy.stat(CB + "cx_open"), 1);
    const second = request(proxy.port(), "/b");
    await waitFor(() => proxy.stat("cluster.web.upstream_rq_pending_active") === 1, "a pending request");
    assert.equal(proxy.stat("cluster.web.upstream_cx_overflow"), 1);
    assert.equal(proxy.stat(CB + "rq_pending_open"), 1);
    const third = await request(proxy.port(), "/c");
    assert.equal(third.status, 503);
    assert.equal(third.headers.get("x-envoy-overloaded"), "true");
    assert.equal(proxy.stat("cluster.web.upstream_rq_pending_overflow"), 1);
    assert.equal(origin.requests.length, 1, "the queued request waits for the connection");
    origin.release();
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    assert.deepEqual(origin.requests.map((q) => q.path), ["/a", "/b"]);
    assert.equal(proxy.stat("cluster.web.upstream_cx_active"), 0);
    await waitFor(() => proxy.stat(CB + "cx_open") === 0, "cx_open to close");
  });

  await t.step("max_retries: 0 forwards the retriable answer with UO", async () => {
    await using origin = scriptedOrigin([{ status: 503 }]);
    await using proxy = await startProxy(config(origin.port, [{ max_retries: 0 }], [{
      match: { prefix: "/" },
      route: { cluster: "web", retry_policy: { retry_on: "5xx", num_retries: 3 } },
    }]));
    const r = await request(proxy.port(), "/");
    assert.equal(r.status, 503);
    assert.equal(origin.requests.length, 1);
    assert.equal(proxy.stat("cluster.web.upstream_rq_retry_overflow"), 1);
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "UO");
  });

  await t.step("route priority HIGH uses the HIGH thresholds; track_remaining gauges", async () => {
    await using origin = scriptedOrigin([{ stall: true }, { status: 200 }]);
    await using proxy = await startProxy(config(
      origin.port,
      [{ priority: "DEFAULT", max_requests: 1, track_remaining: true }, {
        priority: "HIGH",
        max_requests: 5,
      }],
      [
        { match: { prefix: "/high" }, route: { cluster: "web", priority: "HIGH" } },
        { match: { prefix: "/" }, route: { cluster: "web" } },
      ],
    ));
    assert.equal(proxy.stat(CB + "remaining_rq"), 1);
    assert.equal(proxy.stat(CB + "remaining_retries"), 3);
    const first = request(proxy.port(), "/");
    await waitFor(() => origin.inFlight === 1, "the first request");
    assert.equal(proxy.stat(CB + "remaining_rq"), 0);
    assert.equal((await request(proxy.port(), "/")).status, 503);
    assert.equal((await request(proxy.port(), "/high")).status, 200);
    origin.release();
    assert.equal((await first).status, 200);
    await waitFor(() => proxy.stat(CB + "remaining_rq") === 1, "remaining_rq back to 1");
  });
});

Deno.test("circuit breakers: one limit across two workers", async () => {
  await using origin = scriptedOrigin([{ stall: true }, { status: 200 }]);
  await using planes = await startSharedPlanes(config(origin.port, [{ max_requests: 1 }]), 2);
  const first = request(planes.port(0), "/");
  await waitFor(() => origin.inFlight === 1, "the first request on worker 0");
  const r = await request(planes.port(1), "/");
  assert.equal(r.status, 503, "worker 1 sees worker 0's request");
  assert.equal(r.headers.get("x-envoy-overloaded"), "true");
  assert.equal(planes.stat(CB + "rq_open"), 1);
  assert.equal(planes.stat("cluster.web.upstream_rq_pending_overflow"), 1);
  origin.release();
  assert.equal((await first).status, 200);
  await waitFor(() => planes.stat(CB + "rq_open") === 0, "rq_open to close");
  assert.equal((await request(planes.port(1), "/")).status, 200);
});

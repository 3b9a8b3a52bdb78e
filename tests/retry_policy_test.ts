/** Route retry policies end to end: each retry_on condition, limits, URX, previous_hosts, body replay. */
import assert from "node:assert/strict";
import { request, scriptedOrigin, type Step } from "./fault_peers.ts";
import { anyHost, bootstrapYaml, httpListener, refusedPort, startProxy, staticCluster } from "./helpers.ts";

type Obj = Record<string, unknown>;

/** A proxy routing everything to cluster "web" (hosts on `ports`) with `retry` as the route's policy. */
function proxyFor(
  ports: number[],
  retry: Obj | undefined,
  extra: { route?: Obj; vh?: Obj; cluster?: Obj } = {},
) {
  return startProxy(bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost(
        [{
          match: { prefix: "/" },
          route: { cluster: "web", ...(retry ? { retry_policy: retry } : {}), ...extra.route },
        }],
        { include_attempt_count_in_response: true, include_request_attempt_count: true, ...extra.vh },
      )],
    })],
    [staticCluster("web", ports, extra.cluster)],
  ));
}

const fastBackOff = { base_interval: "0.001s", max_interval: "0.002s" };

/** Runs `script` against a retry policy; returns the response, the origin's requests and the proxy. */
async function scenario(
  script: Step[],
  retry: Obj,
  t: { check: (r: Awaited<ReturnType<typeof request>>, p: Obj) => void },
) {
  await using origin = scriptedOrigin(script);
  await using proxy = await proxyFor([origin.port], { retry_back_off: fastBackOff, ...retry });
  const r = await request(proxy.port(), "/x");
  const [log] = await proxy.log(1);
  t.check(r, {
    requests: origin.requests,
    log,
    stat: (n: string) => proxy.stat(n),
  });
}

Deno.test("retry: retry_on conditions", async (t) => {
  await t.step("5xx retries a 503 and the second answer goes to the client", async () => {
    await scenario([{ status: 503 }, { status: 200, body: "ok" }], { retry_on: "5xx", num_retries: 2 }, {
      check: (r, p) => {
        const { requests, log, stat } = p as {
          requests: { headers: Record<string, string> }[];
          log: { flags: string; code: string };
          stat: (n: string) => number;
        };
        assert.equal(r.status, 200);
        assert.equal(r.body, "ok");
        assert.equal(r.headers.get("x-envoy-attempt-count"), "2");
        assert.equal(requests.length, 2);
        assert.equal(requests[0].headers["x-envoy-attempt-count"], "1");
        assert.equal(requests[1].headers["x-envoy-attempt-count"], "2");
        assert.equal(log.code, "200");
        assert.equal(log.flags, "-");
        assert.equal(stat("cluster.web.upstream_rq_retry"), 1);
        assert.equal(stat("cluster.web.upstream_rq_retry_success"), 1);
        assert.equal(stat("cluster.web.upstream_rq_503"), 1);
        assert.equal(stat("cluster.web.upstream_rq_200"), 1);
      },
    });
  });

  const simple = (
    name: string,
    script: Step[],
    retry: Obj,
    expectStatus: number,
    expectRequests: number,
  ) =>
    t.step(name, async () => {
      await scenario(script, retry, {
        check: (r, p) => {
          assert.equal(r.status, expectStatus, r.body);
          assert.equal((p.requests as unknown[]).length, expectRequests);
        },
      });
    });

  await simple(
    "gateway-error retries 502",
    [{ status: 502 }, { status: 200 }],
    { retry_on: "gateway-error" },
    200,
    2,
  );
  await simple(
    "gateway-error does not retry 500",
    [{ status: 500 }, { status: 200 }],
    {
      retry_on: "gateway-error",
    },
    500,
    1,
  );
  await simple(
    "retriable-4xx retries 409",
    [{ status: 409 }, { status: 200 }],
    { retry_on: "retriable-4xx" },
    200,
    2,
  );
  await simple("5xx does not retry 404", [{ status: 404 }, { status: 200 }], { retry_on: "5xx" }, 404, 1);
  await simple(
    "retriable-status-codes",
    [{ status: 418 }, { status: 200 }],
    {
      retry_on: "retriable-status-codes",
      retriable_status_codes: [418],
    },
    200,
    2,
  );
  await simple(
    "retriable-headers",
    [{ status: 200, headers: { "x-try-again": "yes" } }, { status: 201 }],
    {
      retry_on: "retriable-headers",
      retriable_headers: [{ name: "x-try-again", exact_match: "yes" }],
    },
    201,
    2,
  );
  await simple(
    "reset retries a connection closed before the head",
    [{ reset: "before_head" }, { status: 200 }],
    {
      retry_on: "reset",
    },
    200,
    2,
  );
  await simple(
    "connect-failure does not retry a reset",
    [{ reset: "before_head" }, { status: 200 }],
    {
      retry_on: "connect-failure",
    },
    503,
    1,
  );
  await simple(
    "5xx covers resets too",
    [{ reset: "before_head" }, { status: 200 }],
    { retry_on: "5xx" },
    200,
    2,
  );
  await simple(
    "retriable_request_headers: a request not matching is not retried",
    [{ status: 503 }, { status: 200 }],
    { retry_on: "5xx", retriable_request_headers: [{ name: "x-retry-me", present_match: true }] },
    503,
    1,
  );

  await t.step("a reset after the response started is not retried: UC", async () => {
    await scenario([{ reset: "mid_body" }, { status: 200 }], { retry_on: "5xx,reset" }, {
      check: (r, p) => {
        const { requests, log } = p as { requests: unknown[]; log: { flags: string; code: string } };
        assert.equal(r.status, 200);
        assert.equal(r.body, "partial", "the client got what came before the reset");
        assert.equal(requests.length, 1);
        assert.equal(log.flags, "UC");
      },
    });
  });

  await t.step("exhausted retries: last answer, URX, limit_exceeded", async () => {
    await scenario([{ status: 503, body: "third" }], { retry_on: "5xx", num_retries: 2 }, {
      check: (r, p) => {
        const { requests, log, stat } = p as {
          requests: unknown[];
          log: { flags: string; code: string };
          stat: (n: string) => number;
        };
        assert.equal(r.status, 503);
        assert.equal(r.body, "third");
        assert.equal(r.headers.get("x-envoy-attempt-count"), "3");
        assert.equal(requests.length, 3);
        assert.equal(log.flags, "URX");
        assert.equal(stat("cluster.web.upstream_rq_retry"), 2);
        assert.equal(stat("cluster.web.upstream_rq_retry_limit_exceeded"), 1);
        assert.equal(stat("cluster.web.upstream_rq_retry_success"), 0);
      },
    });
  });
});

Deno.test("retry: connect failures and previous_hosts", async (t) => {
  await t.step("connect-failure moves to the other host", async () => {
    await using origin = scriptedOrigin([{ status: 200 }]);
    await using proxy = await proxyFor([refusedPort(), origin.port], {
      retry_on: "connect-failure",
      retry_back_off: fastBackOff,
      retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
    });
    for (let i = 0; i < 2; i++) assert.equal((await request(proxy.port(), "/")).status, 200);
    // round robin puts at least one first attempt on the dead host; every failure was retried
    assert.ok(proxy.stat("cluster.web.upstream_cx_connect_fail") >= 1);
    assert.equal(
      proxy.stat("cluster.web.upstream_rq_retry"),
      proxy.stat("cluster.web.upstream_cx_connect_fail"),
    );
    assert.equal(origin.requests.length, 2);
  });

  await t.step("connect failures until the limit: 503 UF,URX", async () => {
    await using proxy = await proxyFor([refusedPort()], {
      retry_on: "connect-failure",
      num_retries: 2,
      retry_back_off: fastBackOff,
    });
    const r = await request(proxy.port(), "/");
    assert.equal(r.status, 503);
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "UF,URX");
    assert.equal(proxy.stat("cluster.web.upstream_cx_connect_fail"), 3);
  });

  const ring = {
    lb_policy: "RING_HASH",
    ring_hash_lb_config: { minimum_ring_size: 3, maximum_ring_size: 3 },
  };
  const hashRoute = { hash_policy: [{ header: { header_name: "x-user" } }] };

  await t.step("without previous_hosts a hashed request retries the same host", async () => {
    const origins = [0, 1, 2].map(() => scriptedOrigin([{ status: 503 }]));
    try {
      await using proxy = await proxyFor(origins.map((o) => o.port), {
        retry_on: "5xx",
        num_retries: 2,
        retry_back_off: fastBackOff,
      }, { cluster: ring, route: hashRoute });
      assert.equal((await request(proxy.port(), "/", { headers: { "x-user": "alice" } })).status, 503);
      assert.deepEqual(origins.map((o) => o.requests.length).sort(), [0, 0, 3]);
    } finally {
      await Promise.all(origins.map((o) => o.close()));
    }
  });

  await t.step("previous_hosts sends each retry to a host not tried yet", async () => {
    const origins = [0, 1, 2].map(() => scriptedOrigin([{ status: 503 }]));
    try {
      await using proxy = await proxyFor(origins.map((o) => o.port), {
        retry_on: "5xx",
        num_retries: 2,
        retry_back_off: fastBackOff,
        retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
        host_selection_retry_max_attempts: 3,
      }, { cluster: ring, route: hashRoute });
      assert.equal((await request(proxy.port(), "/", { headers: { "x-user": "alice" } })).status, 503);
      assert.deepEqual(origins.map((o) => o.requests.length), [1, 1, 1]);
    } finally {
      await Promise.all(origins.map((o) => o.close()));
    }
  });
});

Deno.test("retry: request bodies", async (t) => {
  await t.step("a buffered body is replayed on the retry", async () => {
    await using origin = scriptedOrigin([{ status: 503 }, { status: 200 }]);
    await using proxy = await proxyFor([origin.port], { retry_on: "5xx", retry_back_off: fastBackOff });
    const r = await request(proxy.port(), "/upload", { body: "payload-123" });
    assert.equal(r.status, 200);
    assert.deepEqual(origin.requests.map((q) => q.body), ["payload-123", "payload-123"]);
  });

  await t.step("a body over per_request_buffer_limit_bytes is not retried", async () => {
    await using origin = scriptedOrigin([{ status: 503 }, { status: 200 }]);
    await using proxy = await proxyFor([origin.port], { retry_on: "5xx", retry_back_off: fastBackOff }, {
      vh: { per_request_buffer_limit_bytes: 16 },
    });
    const body = "x".repeat(100);
    const r = await request(proxy.port(), "/upload", { body });
    assert.equal(r.status, 503);
    assert.equal(origin.requests.length, 1);
    assert.equal(origin.requests[0].body, body);
    assert.equal(proxy.stat("cluster.web.retry_or_shadow_abandoned"), 1);
  });

  await t.step("virtual host retry_policy applies to routes without one", async () => {
    await using origin = scriptedOrigin([{ status: 503 }, { status: 200 }]);
    await using proxy = await proxyFor([origin.port], undefined, {
      vh: { retry_policy: { retry_on: "5xx", retry_back_off: fastBackOff } },
    });
    assert.equal((await request(proxy.port(), "/")).status, 200);
    assert.equal(origin.requests.length, 2);
  });
});

Deno.test("retry: overrides from internal callers only", async (t) => {
  const internal = { "x-forwarded-for": "10.1.2.3" };
  const override = { "x-envoy-retry-on": "5xx", "x-envoy-max-retries": "2" };

  await t.step("an internal caller turns retries on and sets the limit", async () => {
    await using origin = scriptedOrigin([{ status: 503 }, { status: 503 }, { status: 200 }]);
    await using proxy = await proxyFor([origin.port], undefined);
    const r = await request(proxy.port(), "/", { headers: { ...internal, ...override } });
    assert.equal(r.status, 200);
    assert.equal(origin.requests.length, 3);
    assert.equal(origin.requests[0].headers["x-envoy-retry-on"], undefined, "stripped before upstream");
    assert.equal(origin.requests[0].headers["x-envoy-max-retries"], undefined);
  });

  await t.step("x-envoy-max-retries overrides the route's num_retries", async () => {
    await using origin = scriptedOrigin([{ status: 503 }]);
    await using proxy = await proxyFor([origin.port], {
      retry_on: "5xx",
      num_retries: 3,
      retry_back_off: fastBackOff,
    });
    const r = await request(proxy.port(), "/", { headers: { ...internal, "x-envoy-max-retries": "1" } });
    assert.equal(r.status, 503);
    assert.equal(origin.requests.length, 2);
  });

  await t.step("the same headers from an external client are ignored", async () => {
    await using origin = scriptedOrigin([{ status: 503 }, { status: 200 }]);
    await using proxy = await proxyFor([origin.port], undefined);
    const r = await request(proxy.port(), "/", { headers: { "x-forwarded-for": "8.8.8.8", ...override } });
    assert.equal(r.status, 503);
    assert.equal(origin.requests.length, 1);
    assert.equal(origin.requests[0].headers["x-envoy-retry-on"], undefined);
  });
});

/** The registry's HTTP API called without sockets (Hono-style app tests). */
import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { discoveryHttpHandler, STALE_HEADER } from "./http.ts";
import { Registry } from "./registry.ts";
import { MemoryStore } from "./store.ts";

function app(store = new MemoryStore()) {
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const registry = new Registry({ store, stats: new StatsStore(), clock });
  const handler = discoveryHttpHandler(registry, { env: "staging" });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await handler(
      new Request(`http://registry${path}`, {
        method,
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      }),
    );
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text), headers: res.headers };
  };
  return { clock, registry, call };
}

Deno.test("HTTP v1: register, read, repo, delete", async () => {
  const { clock, call } = app();
  const post = await call("POST", "/v1/registration/users", {
    ip: "10.0.0.1",
    port: 80,
    revision: "abc",
    service_repo_name: "people",
    tags: { az: "us-east-1a", canary: false },
  });
  assert.deepEqual([post.status, post.text], [200, "OK"]);
  clock.advance(5000);
  await call("POST", "/v1/registration/users", { ip: "10.0.0.1", port: 81, service_repo_name: "people" });
  await call("POST", "/v1/registration/users-admin", {
    ip: "10.0.0.5",
    port: 80,
    service_repo_name: "people",
  });
  const get = await call("GET", "/v1/registration/users");
  assert.equal(get.status, 200);
  assert.deepEqual(get.json(), {
    env: "staging",
    service: "users",
    hosts: [
      {
        ip_address: "10.0.0.1",
        port: 80,
        revision: "abc",
        service_repo_name: "people",
        last_check_in: "2024-01-01T00:00:00.000Z",
        tags: { az: "us-east-1a", canary: false },
      },
      {
        ip_address: "10.0.0.1",
        port: 81,
        revision: "",
        service_repo_name: "people",
        last_check_in: "2024-01-01T00:00:05.000Z",
        tags: {},
      },
    ],
  });
  assert.equal(get.headers.get(STALE_HEADER), null);
  assert.deepEqual((await call("GET", "/v1/registration/nobody")).json(), {
    env: "staging",
    service: "nobody",
    hosts: [],
  });
  const repo = (await call("GET", "/v1/registration/repo/people")).json();
  assert.deepEqual(repo.hosts.map((h: { service: string; port: number }) => `${h.service}:${h.port}`), [
    "users:80",
    "users:81",
    "users-admin:80",
  ]);
  const del = await call("DELETE", "/v1/registration/users/10.0.0.1");
  assert.deepEqual([del.status, del.json()], [200, { removed: 2 }]);
  assert.deepEqual((await call("GET", "/v1/registration/users")).json().hosts, []);
  // IPv6 in the path, percent-encoded or not
  await call("POST", "/v1/registration/v6", { ip: "fd00::1", port: 80 });
  assert.deepEqual((await call("DELETE", "/v1/registration/v6/fd00%3A%3A1")).json(), { removed: 1 });
});

Deno.test("HTTP v1: bad input is a 400 with a reason", async () => {
  const { call, registry } = app();
  const cases: [string, string, unknown, RegExp][] = [
    ["POST", "/v1/registration/users", "{nope", /Body is not JSON/],
    ["POST", "/v1/registration/users", { ip: "10.0.0.1" }, /port must be/],
    ["POST", "/v1/registration/bad%20name", { ip: "10.0.0.1", port: 1 }, /Bad service name/],
    ["POST", "/v1/registration/users", { ip: "nope", port: 1 }, /ip must be/],
    ["DELETE", "/v1/registration/users/not-an-ip", undefined, /ip must be/],
    ["GET", "/v1/registration/%zz", undefined, /percent-encoding/],
  ];
  for (const [method, path, body, re] of cases) {
    const r = await call(method, path, body);
    assert.equal(r.status, 400, `${method} ${path}`);
    assert.match(r.text, re);
  }
  assert.equal(registry.stats.snapshot().counters["discovery.bad_requests"], cases.length);
  assert.equal((await call("PUT", "/v1/registration/users", {})).status, 405);
  assert.equal((await call("GET", "/v1/nothing")).status, 404);
});

Deno.test("HTTP: EDS over REST, /healthcheck, /stats", async () => {
  const { call } = app();
  await call("POST", "/v1/registration/users", {
    ip: "10.0.0.1",
    port: 80,
    tags: { load_balancing_weight: 2 },
  });
  const r = await call("POST", "/v3/discovery:endpoints", { resource_names: ["users"] });
  assert.equal(r.status, 200);
  const body = r.json();
  assert.equal(body.resources[0].cluster_name, "users");
  assert.equal(body.resources[0].endpoints[0].load_balancing_weight, 2);
  const again = await call("POST", "/v3/discovery:endpoints", {
    resource_names: ["users"],
    version_info: body.version_info,
  });
  assert.equal(again.status, 304);
  assert.equal((await call("GET", "/v3/discovery:endpoints")).status, 405);
  assert.deepEqual([(await call("GET", "/healthcheck")).text], ["OK"]);
  const stats = await call("GET", "/stats");
  assert.match(stats.text, /^discovery\.registrations: 1$/m);
  assert.match((await call("GET", "/stats/prometheus")).text, /envoy_discovery_registrations\{?.*\}? 1/);
});

/** A store whose reads and writes fail while `down`. */
class DownStore extends MemoryStore {
  override readonly kind: string = "flaky";
  down = false;
  override hosts(s: string) {
    return this.down ? Promise.reject(new Error("refused")) : super.hosts(s);
  }
  override register(...a: Parameters<MemoryStore["register"]>) {
    return this.down ? Promise.reject(new Error("refused")) : super.register(...a);
  }
  override healthy() {
    return !this.down;
  }
}

Deno.test("HTTP: store down: stale reads with the header, writes 503, EDS from the cache", async () => {
  const store = new DownStore();
  const { call, registry } = app(store);
  await call("POST", "/v1/registration/users", { ip: "10.0.0.1", port: 80 });
  await call("GET", "/v1/registration/users");
  const eds = (await call("POST", "/v3/discovery:endpoints", { resource_names: ["users"] })).json();
  store.down = true;
  const get = await call("GET", "/v1/registration/users");
  assert.equal(get.status, 200);
  assert.equal(get.headers.get(STALE_HEADER), "true");
  assert.equal(get.json().hosts.length, 1);
  const post = await call("POST", "/v1/registration/users", { ip: "10.0.0.2", port: 80 });
  assert.equal(post.status, 503);
  assert.match(post.text, /flaky store unavailable: refused/);
  const stale = await call("POST", "/v3/discovery:endpoints", {
    resource_names: ["users"],
    version_info: eds.version_info,
  });
  assert.deepEqual([stale.status, stale.headers.get(STALE_HEADER)], [304, "true"]);
  // nothing cached for this one: 503, so a proxy keeps the hosts it has
  assert.equal((await call("POST", "/v3/discovery:endpoints", { resource_names: ["orders"] })).status, 503);
  assert.match((await call("GET", "/healthcheck")).text, /unreachable/);
  const c = registry.stats.snapshot().counters;
  assert.equal(c["discovery.stale_reads"], 2);
  assert.equal(c["discovery.store_error"], 4);
});

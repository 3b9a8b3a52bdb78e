import assert from "node:assert/strict";
import { GrpcServer } from "../grpc/server.ts";
import { type GrpcStreamCall, openGrpcStream } from "../grpc/stream_client.ts";
import { StatsStore } from "../stats/store.ts";
import { encodeMessage } from "../xds/codec/encode.ts";
import { decodeMessage } from "../xds/codec/proto_json.ts";
import { messageType } from "../xds/codec/root.ts";
import { HDS_METHOD, HdsServer, type HdsTarget } from "./hds.ts";
import { assignCheckers, checkersOf, endpointKey } from "./hds_assign.ts";

const REQ = "envoy.service.health.v3.HealthCheckRequestOrEndpointHealthResponse";
const SPEC = "envoy.service.health.v3.HealthCheckSpecifier";
const HC = {
  timeout: "1s",
  interval: "5s",
  unhealthy_threshold: 2,
  healthy_threshold: 1,
  http_health_check: { path: "/hc" },
};

Deno.test("checkersOf: min(k, nodes) distinct nodes, independent of the nodes' order", () => {
  const nodes = ["a", "b", "c"];
  assert.deepEqual(checkersOf("svc|10.0.0.1:80", [], 2), []);
  assert.equal(checkersOf("svc|10.0.0.1:80", ["a"], 2).length, 1);
  const two = checkersOf("svc|10.0.0.1:80", nodes, 2);
  assert.equal(new Set(two).size, 2);
  assert.deepEqual(checkersOf("svc|10.0.0.1:80", ["c", "a", "b"], 2), two);
  assert.deepEqual(checkersOf("svc|10.0.0.1:80", nodes, 5).sort(), nodes);
});

Deno.test("assignCheckers: the work spreads evenly over the proxies", () => {
  const keys = Array.from({ length: 3000 }, (_, i) => endpointKey("svc", `10.0.${i >> 8}.${i & 255}`, 8080));
  const nodes = Array.from({ length: 10 }, (_, i) => `proxy-${i}`);
  const a = assignCheckers(keys, nodes, 2);
  const load = new Map(nodes.map((n) => [n, 0]));
  for (const cs of a.values()) for (const n of cs) load.set(n, load.get(n)! + 1);
  // 6000 checks over 10 proxies: 600 each on average
  for (const [n, l] of load) assert.ok(l > 480 && l < 720, `${n} checks ${l}`);
});

Deno.test("assignCheckers: a proxy leaving or joining moves only the endpoints it had or takes", () => {
  const keys = Array.from({ length: 1000 }, (_, i) => endpointKey("svc", "10.1.0.1", 1000 + i));
  const nodes = ["a", "b", "c", "d", "e"];
  const before = assignCheckers(keys, nodes, 2);
  const after = assignCheckers(keys, nodes.filter((n) => n !== "c"), 2);
  let moved = 0;
  for (const k of keys) {
    const was = before.get(k)!;
    const now = after.get(k)!;
    if (!was.includes("c")) assert.deepEqual(now, was, k);
    else {
      moved++;
      // the survivor keeps checking; one new checker replaces "c"
      for (const n of was) if (n !== "c") assert.ok(now.includes(n));
    }
  }
  assert.ok(moved > 300 && moved < 500, `moved ${moved}`); // ~2/5 of the endpoints had "c"
  const joined = assignCheckers(keys, [...nodes, "f"], 2);
  for (const k of keys) {
    const now = joined.get(k)!;
    if (!now.includes("f")) assert.deepEqual(now, before.get(k));
  }
});

/** A fake proxy on a real HDS stream: keeps the newest specifier, sends reports. */
class FakeProxy {
  specs: Record<string, unknown>[] = [];
  #waiters: (() => void)[] = [];
  readonly done: Promise<void>;
  constructor(readonly id: string, readonly call: GrpcStreamCall) {
    this.done = (async () => {
      try {
        for (;;) {
          const m = await call.read();
          if (m === null) return;
          this.specs.push(decodeMessage(messageType(SPEC), m));
          for (const w of this.#waiters.splice(0)) w();
        }
      } catch {
        // ended
      }
    })();
  }
  static async connect(port: number, id: string): Promise<FakeProxy> {
    const call = await openGrpcStream({ host: "127.0.0.1", port }, HDS_METHOD);
    call.write(encodeMessage(messageType(REQ), { health_check_request: { node: { id, cluster: "edge" } } }));
    return new FakeProxy(id, call);
  }
  /** Waits for the `n`-th specifier (1-based). */
  async spec(n: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 5000;
    while (this.specs.length < n) {
      if (Date.now() > deadline) throw new Error(`${this.id}: no specifier #${n}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.specs[n - 1];
  }
  /** "address:port" of every endpoint of `service` in the newest specifier. */
  endpoints(service: string): string[] {
    const s = this.specs.at(-1) as { cluster_health_checks?: Record<string, unknown>[] } | undefined;
    const c = s?.cluster_health_checks?.find((x) => x.cluster_name === service) as
      | {
        locality_endpoints: {
          endpoints: { address: { socket_address: { address: string; port_value: number } } }[];
        }[];
      }
      | undefined;
    return (c?.locality_endpoints ?? []).flatMap((l) =>
      l.endpoints.map((e) => `${e.address.socket_address.address}:${e.address.socket_address.port_value}`)
    ).sort();
  }
  report(service: string | null, list: [string, number, string][]): void {
    const eh = list.map(([address, port, status]) => ({
      endpoint: { address: { socket_address: { address, port_value: port } } },
      health_status: status,
    }));
    const body = service === null ? { endpoints_health: eh } : {
      cluster_endpoints_health: [{
        cluster_name: service,
        locality_endpoints_health: [{ endpoints_health: eh }],
      }],
    };
    this.call.write(encodeMessage(messageType(REQ), { endpoint_health_response: body }));
  }
  async close(): Promise<void> {
    await this.call.close();
    await this.done;
  }
}

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setup(targets: HdsTarget[], k = 2) {
  const stats = new StatsStore();
  let current = targets;
  const hds = new HdsServer({ targets: () => current, checkersPerEndpoint: k, intervalMs: 1500, stats });
  const grpc = new GrpcServer();
  hds.registerOn(grpc);
  const { port } = grpc.listen({ port: 0 });
  const changes: string[][] = [];
  hds.healthListeners.add((s) => changes.push([...s].sort()));
  return {
    hds,
    stats,
    port,
    changes,
    setTargets(t: HdsTarget[]) {
      current = t;
      hds.targetsChanged();
    },
    async close() {
      hds.close();
      await grpc.close();
    },
  };
}

const EPS = [
  { address: "10.0.0.1", port: 80, zone: "a" },
  { address: "10.0.0.2", port: 80, zone: "b" },
  { address: "10.0.0.3", port: 80 },
  { address: "10.0.0.4", port: 80, zone: "a" },
];

Deno.test("HdsServer: three proxies, k=2: each endpoint goes to two of them; a specifier per proxy", async () => {
  const t = setup([{ service: "web", endpoints: EPS, healthCheck: HC }]);
  const proxies = await Promise.all(["p1", "p2", "p3"].map((id) => FakeProxy.connect(t.port, id)));
  try {
    await until("three proxies", () => t.hds.proxies.length === 3);
    await until("final shares", () => {
      const n = EPS.map((e) => proxies.filter((p) => p.endpoints("web").includes(`${e.address}:80`)).length);
      return n.every((x) => x === 2);
    });
    for (const e of EPS) {
      const cs = t.hds.checkers("web", e.address, e.port);
      assert.equal(cs.length, 2);
      for (const p of proxies) {
        assert.equal(p.endpoints("web").includes(`${e.address}:80`), cs.includes(p.id));
      }
    }
    const spec = proxies[0].specs.at(-1) as Record<string, unknown>;
    assert.equal(spec.interval, "1.5s");
    const chc = (spec.cluster_health_checks as Record<string, unknown>[])[0];
    assert.deepEqual(chc.health_checks, [HC]);
    assert.equal(t.stats.gauge("hds.streams_active").value, 3);
    assert.equal(t.stats.gauge("hds.proxies").value, 3);
    const status = t.hds.status() as {
      endpoints: { checkers: string[] }[];
      proxies: { endpoints: number }[];
    };
    assert.equal(status.endpoints.length, 4);
    assert.equal(status.proxies.reduce((n, p) => n + p.endpoints, 0), 8);
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await t.close();
  }
});

Deno.test("HdsServer: verdicts follow the majority of the current checkers; listeners hear of changes", async () => {
  const t = setup([{ service: "web", endpoints: EPS.slice(0, 1), healthCheck: HC }], 3);
  const proxies = await Promise.all(["p1", "p2", "p3"].map((id) => FakeProxy.connect(t.port, id)));
  try {
    await until("all three check it", () => t.hds.checkers("web", "10.0.0.1", 80).length === 3);
    assert.equal(t.hds.health("web", "10.0.0.1", 80), undefined);
    proxies[0].report("web", [["10.0.0.1", 80, "UNHEALTHY"]]);
    await until("first verdict", () => t.hds.health("web", "10.0.0.1", 80) === "UNHEALTHY");
    assert.deepEqual(t.changes, [["web"]]);
    proxies[1].report("web", [["10.0.0.1", 80, "HEALTHY"]]);
    proxies[2].report(null, [["10.0.0.1", 80, "HEALTHY"]]); // the flat legacy form
    await until("healthy by 2 to 1", () => t.hds.health("web", "10.0.0.1", 80) === "HEALTHY");
    proxies[1].report("web", [["10.0.0.1", 80, "TIMEOUT"]]);
    await until("unhealthy by 2 to 1", () => t.hds.health("web", "10.0.0.1", 80) === "UNHEALTHY");
    // an endpoint a proxy was not given is not counted
    proxies[0].report("web", [["10.9.9.9", 80, "HEALTHY"]]);
    await until("ignored", () => t.stats.counter("hds.reports_ignored").value === 1);
    // a checker leaving stops counting: 1 HEALTHY (p3) against 1 TIMEOUT (p2) is a tie, the verdict stays
    await proxies[0].close();
    await until("p1 gone", () => t.hds.proxies.length === 2);
    assert.equal(t.hds.health("web", "10.0.0.1", 80), "UNHEALTHY");
    proxies[1].report("web", [["10.0.0.1", 80, "HEALTHY"]]);
    await until("healthy again", () => t.hds.health("web", "10.0.0.1", 80) === "HEALTHY");
    assert.deepEqual(t.changes.length, 4);
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await t.close();
  }
});

Deno.test("HdsServer: a proxy leaving moves its share; new targets are pushed; removed endpoints lose their verdict", async () => {
  const t = setup([{ service: "web", endpoints: EPS, healthCheck: HC }]);
  const proxies = await Promise.all(["p1", "p2", "p3"].map((id) => FakeProxy.connect(t.port, id)));
  try {
    await until("assigned", () => EPS.every((e) => t.hds.checkers("web", e.address, 80).length === 2));
    const gone = proxies[1];
    await until("p2 got its share", () => gone.endpoints("web").length > 0);
    await gone.close();
    await until("p2 gone", () => !t.hds.proxies.includes("p2"));
    for (const e of EPS) assert.deepEqual(t.hds.checkers("web", e.address, 80).sort(), ["p1", "p3"]);
    await until(
      "p1 and p3 check everything",
      () => [proxies[0], proxies[2]].every((p) => p.endpoints("web").length === 4),
    );
    proxies[0].report("web", [["10.0.0.1", 80, "HEALTHY"]]);
    await until("verdict", () => t.hds.health("web", "10.0.0.1", 80) === "HEALTHY");
    t.setTargets([{ service: "web", endpoints: EPS.slice(1), healthCheck: HC }]);
    assert.equal(t.hds.health("web", "10.0.0.1", 80), undefined);
    assert.deepEqual(t.changes.at(-1), ["web"]);
    await until("pushed", () => proxies[0].endpoints("web").length === 3);
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await t.close();
  }
});

Deno.test("HdsServer: a report before the HealthCheckRequest or without node.id ends the stream", async () => {
  const t = setup([{ service: "web", endpoints: EPS, healthCheck: HC }]);
  try {
    const call = await openGrpcStream({ host: "127.0.0.1", port: t.port }, HDS_METHOD);
    call.write(encodeMessage(messageType(REQ), { endpoint_health_response: { endpoints_health: [] } }));
    await assert.rejects(() => call.read(), /HealthCheckRequest/);
    await call.close();
    const anon = await openGrpcStream({ host: "127.0.0.1", port: t.port }, HDS_METHOD);
    anon.write(encodeMessage(messageType(REQ), { health_check_request: { node: {} } }));
    await assert.rejects(() => anon.read(), /node\.id/);
    await anon.close();
    assert.equal(t.stats.counter("hds.bad_messages").value, 2);
  } finally {
    await t.close();
  }
});

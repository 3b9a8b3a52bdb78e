import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { JitteredBackoff } from "./backoff.ts";
import { NACK_CODE, Subscription, versionHash } from "./subscription.ts";
import { TYPE_URLS, type XdsUpdate } from "./types.ts";

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;

function setup(
  typeUrl: string,
  opts: { names?: string[]; reject?: (u: XdsUpdate) => string | undefined } = {},
) {
  const store = new StatsStore();
  const clock = new ManualClock();
  const updates: XdsUpdate[] = [];
  const init: string[] = [];
  const sub = new Subscription({
    typeUrl,
    names: opts.names,
    stats: store.scope("sub"),
    clock,
    initialFetchTimeoutMs: 15_000,
    onInitialFetchDone: (o) => init.push(o),
    maxResponseBytes: 4096,
    validateAndApply: (u) => {
      updates.push(u);
      return Promise.resolve(opts.reject?.(u));
    },
  });
  const stat = (n: string) => store.counters.get(`sub.${n}`)?.value ?? 0;
  return { sub, store, clock, updates, init, stat };
}

const cluster = (name: string, extra: Record<string, unknown> = {}) => ({ "@type": CDS, name, ...extra });

Deno.test("ACK carries the new version and the response nonce; NACK the previous version, nonce and error", async () => {
  const { sub, updates, init, stat, store } = setup(CDS, {
    reject: (u) => (u.resources.has("bad") ? "clusters[0]: invalid lb_policy" : undefined),
  });
  sub.start();
  const node = { id: "n1", cluster: "c1" };
  assert.deepEqual(sub.request(node), { type_url: CDS, node });
  await sub.handleResponse({ version_info: "v1", nonce: "n-1", type_url: CDS, resources: [cluster("a")] });
  assert.deepEqual(updates[0], {
    typeUrl: CDS,
    version: "v1",
    resources: new Map([["a", { name: "a" }]]),
    removed: [],
  });
  assert.deepEqual(sub.request(), { version_info: "v1", type_url: CDS, response_nonce: "n-1" });
  assert.deepEqual(init, ["applied"]);
  assert.equal(store.gauges.get("sub.version")?.value, versionHash("v1"));

  await sub.handleResponse({ version_info: "v2", nonce: "n-2", resources: [cluster("bad")] });
  assert.deepEqual(sub.request(), {
    version_info: "v1",
    type_url: CDS,
    response_nonce: "n-2",
    error_detail: { code: NACK_CODE, message: "clusters[0]: invalid lb_policy" },
  });
  assert.deepEqual([...sub.resources.keys()], ["a"], "last good kept");
  assert.equal(store.gauges.get("sub.version")?.value, versionHash("v1"));

  // the next good response clears error_detail
  await sub.handleResponse({ version_info: "v3", nonce: "n-3", resources: [cluster("a"), cluster("b")] });
  assert.deepEqual(sub.request(), { version_info: "v3", type_url: CDS, response_nonce: "n-3" });
  assert.deepEqual([stat("update_attempt"), stat("update_success"), stat("update_rejected")], [3, 2, 1]);
  assert.deepEqual(init, ["applied"], "initial fetch reported once");
});

Deno.test("LDS/CDS remove resources absent from a response; EDS/RDS do not and ignore unsubscribed names", async () => {
  const cds = setup(CDS);
  await cds.sub.handleResponse({ version_info: "1", resources: [cluster("a"), cluster("b")] });
  await cds.sub.handleResponse({ version_info: "2", resources: [cluster("b")] });
  assert.deepEqual(cds.updates[1].removed, ["a"]);
  await cds.sub.handleResponse({ version_info: "3", resources: [] });
  assert.deepEqual(cds.updates[2].removed, ["b"]);
  assert.equal(cds.stat("update_empty"), 1);

  const eds = setup(EDS, { names: ["x", "y"] });
  const cla = (n: string) => ({ "@type": EDS, cluster_name: n, endpoints: [] });
  assert.deepEqual(eds.sub.request(), { resource_names: ["x", "y"], type_url: EDS });
  await eds.sub.handleResponse({ version_info: "1", resources: [cla("x"), cla("y"), cla("z")] });
  assert.deepEqual([...eds.updates[0].resources.keys()], ["x", "y"], "z is not subscribed");
  await eds.sub.handleResponse({ version_info: "2", resources: [cla("y")] });
  assert.deepEqual(eds.updates[1].removed, []);
  assert.deepEqual([...eds.sub.resources.keys()].sort(), ["x", "y"]);
  assert.equal(eds.sub.setNames(["y", "x"]), false, "same set: no new request");
  assert.equal(eds.sub.setNames(["y"]), true);
  assert.deepEqual([...eds.sub.resources.keys()], ["y"]);
  assert.deepEqual(eds.sub.request().resource_names, ["y"]);
});

Deno.test("a wrong type URL, a malformed or a huge response is rejected whole without calling the apply layer", async () => {
  const { sub, updates, stat } = setup(CDS);
  await sub.handleResponse({ version_info: "1", nonce: "a", resources: [cluster("ok")] });
  await sub.handleResponse({
    version_info: "2",
    nonce: "b",
    resources: [cluster("ok2"), { "@type": TYPE_URLS.listener, name: "l" }],
  });
  assert.deepEqual(sub.request().error_detail, {
    code: NACK_CODE,
    message: `resources[1]: type "${TYPE_URLS.listener}" does not match ${CDS}`,
  });
  assert.equal(sub.request().response_nonce, "b");
  await sub.handleResponse({ version_info: "2", nonce: "c", type_url: EDS, resources: [] });
  assert.match(sub.request().error_detail!.message, /type_url .*ClusterLoadAssignment is not/);
  await sub.handleResponseText('{"version_info": "3", "resources": [');
  assert.match(sub.request().error_detail!.message, /^Malformed DiscoveryResponse: /);
  assert.equal(sub.request().response_nonce, "c", "unparsable: the last nonce stays");
  await sub.handleResponseText("x".repeat(5000));
  assert.equal(
    sub.request().error_detail!.message,
    "DiscoveryResponse of 5000 bytes is over the limit of 4096 bytes",
  );
  await sub.handleResponse({ version_info: "4", resources: [cluster("d"), cluster("d")] });
  assert.match(sub.request().error_detail!.message, /duplicate resource name "d"/);
  await sub.handleResponse({ version_info: "4", resources: [{ "@type": CDS }] });
  assert.match(sub.request().error_detail!.message, /missing name/);
  await sub.handleResponse(["not", "an", "object"]);
  await sub.handleResponse({ version_info: 5, resources: [] });
  await sub.handleResponse({ version_info: "5", resources: { a: 1 } });
  assert.equal(updates.length, 1, "nothing bad reached the apply layer");
  assert.equal(sub.version, "1");
  assert.deepEqual([...sub.resources.keys()], ["ok"]);
  assert.equal(stat("update_rejected"), 9);
});

Deno.test("an apply layer that throws is a NACK with its message; Resource wrappers are unwrapped", async () => {
  const store = new StatsStore();
  const sub = new Subscription({
    typeUrl: CDS,
    stats: store,
    clock: new ManualClock(),
    validateAndApply: (u) => {
      if (u.version === "boom") throw new Error("boom failed");
      return Promise.resolve(undefined);
    },
  });
  await sub.handleResponse({ version_info: "boom", nonce: "1", resources: [] });
  assert.equal(sub.request().error_detail?.message, "boom failed");
  await sub.handleResponse({
    version_info: "w",
    resources: [{
      "@type": "type.googleapis.com/envoy.service.discovery.v3.Resource",
      name: "a",
      resource: cluster("a"),
    }],
  });
  assert.deepEqual([...sub.resources.entries()], [["a", { name: "a" }]]);
});

Deno.test("the initial fetch completes on the timeout, counted once; a rejection also completes it", () => {
  const a = setup(CDS);
  a.sub.start();
  a.clock.advance(14_999);
  assert.deepEqual(a.init, []);
  a.clock.advance(1);
  assert.deepEqual(a.init, ["timeout"]);
  assert.equal(a.stat("init_fetch_timeout"), 1);
  a.clock.advance(60_000);
  assert.equal(a.stat("init_fetch_timeout"), 1);

  const b = setup(CDS, { reject: () => "no" });
  b.sub.start();
  return b.sub.handleResponse({ version_info: "1", resources: [] }).then(() => {
    assert.deepEqual(b.init, ["rejected"]);
    b.clock.advance(20_000);
    assert.equal(b.stat("init_fetch_timeout"), 0);
  });
});

Deno.test("back-off: full jitter, doubling from 500 ms up to 30 s, reset after success", () => {
  const b = new JitteredBackoff(500, 30_000, () => 0.999999);
  const seen = Array.from({ length: 8 }, () => b.next());
  assert.deepEqual(seen, [499, 999, 1999, 3999, 7999, 15999, 29999, 29999]);
  b.reset();
  assert.equal(b.next(), 499);
  assert.equal(new JitteredBackoff(500, 30_000, () => 0).next(), 0);
});

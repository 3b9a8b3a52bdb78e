import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { clusterLoadAssignmentSchema } from "../upstream/config.ts";
import { StatsStore } from "../stats/store.ts";
import { answerEdsRequest, buildEdsSnapshot, CLA_TYPE_URL, loadAssignment } from "./eds.ts";
import { Registry } from "./registry.ts";
import { MemoryStore } from "./store.ts";
import type { HostRecord, HostTags } from "./types.ts";

const host = (ip: string, port: number, tags: HostTags = {}): HostRecord => ({
  service: "users",
  ip_address: ip,
  port,
  revision: "",
  service_repo_name: "",
  last_check_in: 0,
  tags,
});

Deno.test("loadAssignment: localities from az/region, weights per host and per locality", () => {
  const cla = loadAssignment("users", [
    host("10.0.0.3", 80, { az: "b", region: "r1" }),
    host("10.0.0.1", 80, { az: "a", region: "r1", load_balancing_weight: 3 }),
    host("10.0.0.2", 80, { az: "a", region: "r1", canary: true }),
    host("10.0.0.9", 80),
  ]);
  const meta = (canary: boolean) => ({ filter_metadata: { "envoy.lb": { canary } } });
  assert.deepEqual(cla, {
    cluster_name: "users",
    endpoints: [
      {
        load_balancing_weight: 1,
        lb_endpoints: [{
          endpoint: { address: { socket_address: { address: "10.0.0.9", port_value: 80 } } },
          metadata: meta(false),
          load_balancing_weight: 1,
        }],
      },
      {
        locality: { region: "r1", zone: "a" },
        load_balancing_weight: 4,
        lb_endpoints: [
          {
            endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } },
            metadata: meta(false),
            load_balancing_weight: 3,
          },
          {
            endpoint: { address: { socket_address: { address: "10.0.0.2", port_value: 80 } } },
            metadata: meta(true),
            load_balancing_weight: 1,
          },
        ],
      },
      {
        locality: { region: "r1", zone: "b" },
        load_balancing_weight: 1,
        lb_endpoints: [{
          endpoint: { address: { socket_address: { address: "10.0.0.3", port_value: 80 } } },
          metadata: meta(false),
          load_balancing_weight: 1,
        }],
      },
    ],
  });
  // nuncio's own EDS schema accepts it
  assert.ok(clusterLoadAssignmentSchema.safeParse(cla).success);
  assert.ok(clusterLoadAssignmentSchema.safeParse(loadAssignment("empty", [])).success);
});

Deno.test("buildEdsSnapshot: the version is a content hash (order of hosts and check-in times do not matter)", () => {
  const a = buildEdsSnapshot([["users", [host("10.0.0.1", 80), host("10.0.0.2", 80)]]]);
  const b = buildEdsSnapshot([["users", [
    { ...host("10.0.0.2", 80), last_check_in: 5 },
    host("10.0.0.1", 80),
  ]]]);
  const c = buildEdsSnapshot([["users", [host("10.0.0.1", 80)]]]);
  assert.equal(a.version, b.version);
  assert.notEqual(a.version, c.version);
  assert.match(a.version, /^[0-9a-f]{16}$/);
});

Deno.test("answerEdsRequest: named services, wildcard, not modified, bad requests", async () => {
  const clock = new ManualClock();
  const registry = new Registry({ store: new MemoryStore(), stats: new StatsStore(), clock });
  await registry.register("users", { ip: "10.0.0.1", port: 80 });
  await registry.register("orders", { ip: "10.0.0.2", port: 81 });
  const a = await answerEdsRequest(registry, { type_url: CLA_TYPE_URL, resource_names: ["users", "ghost"] });
  assert.equal(a.status, 200);
  const body = a.body as { version_info: string; resources: { cluster_name: string }[]; nonce: string };
  assert.equal(body.version_info, a.version);
  assert.deepEqual(body.resources.map((r) => r.cluster_name), ["users", "ghost"]);
  assert.equal((body.resources[0] as Record<string, unknown>)["@type"], CLA_TYPE_URL);
  // a poll with the current version: not modified
  const same = await answerEdsRequest(registry, {
    resource_names: ["users", "ghost"],
    version_info: a.version,
  });
  assert.equal(same.status, 304);
  // a change makes a new version
  clock.advance(1000);
  await registry.register("users", { ip: "10.0.0.3", port: 80 });
  const b = await answerEdsRequest(registry, { resource_names: ["users", "ghost"], version_info: a.version });
  assert.equal(b.status, 200);
  assert.notEqual(b.version, a.version);
  // re-checking in without changes keeps the version
  clock.advance(1000);
  await registry.register("users", { ip: "10.0.0.3", port: 80 });
  assert.equal((await answerEdsRequest(registry, { resource_names: ["users", "ghost"] })).version, b.version);
  // wildcard: every service
  const all = await answerEdsRequest(registry, {});
  assert.deepEqual((all.body!.resources as { cluster_name: string }[]).map((r) => r.cluster_name), [
    "orders",
    "users",
  ]);
  await assert.rejects(answerEdsRequest(registry, { type_url: "x" }), /type_url must be/);
  await assert.rejects(answerEdsRequest(registry, { resource_names: [1] }), /resource_names/);
  await assert.rejects(answerEdsRequest(registry, []), /JSON object/);
});

/** The subset load balancer through a real cluster: selection, fallbacks, health, stats and EDS churn. */
import assert from "node:assert/strict";
import { ManualClock } from "../../common/clock.ts";
import { MetadataMatchCriteria } from "../../common/metadata_match.ts";
import { SharedArena } from "../../common/shared_arena.ts";
import { StatsStore } from "../../stats/store.ts";
import type { ClusterImpl } from "../cluster.ts";
import { createClusterManager } from "../cluster_manager.ts";
import { clusterLoadAssignmentSchema, clusterSchema } from "../config.ts";
import type { DynamicClusterManager } from "../types.ts";
import { seededRandom } from "./lb.ts";

type Obj = Record<string, unknown>;

/** An lb_endpoint at `address` with `envoy.lb` metadata `lb` (none when undefined). */
const ep = (address: string, lb?: Obj, extra: Obj = {}) => ({
  endpoint: { address: { socket_address: { address, port_value: 8080 } } },
  ...(lb ? { metadata: { filter_metadata: { "envoy.lb": lb } } } : {}),
  ...extra,
});

function make(endpoints: unknown[], subset: Obj, extra: Obj = {}) {
  const stats = new StatsStore();
  const config = clusterSchema.parse({
    name: "c",
    load_assignment: { endpoints: [{ lb_endpoints: endpoints }] },
    lb_subset_config: subset,
    ...extra,
  });
  const cm = createClusterManager([config], {
    stats,
    clock: new ManualClock(),
    random: seededRandom(7),
    shared: SharedArena.create({ capacity: 256 }),
  });
  const cluster = cm.get("c") as ClusterImpl;
  const g = (n: string) => stats.gauges.get(`cluster.c.${n}`)?.value ?? 0;
  const c = (n: string) => stats.counters.get(`cluster.c.${n}`)?.value ?? 0;
  return { cm, cluster, stats, g, c };
}

const match = (s: Obj) => MetadataMatchCriteria.fromStruct(s);

/** Addresses of `n` picks with criteria `s` (null: no criteria). */
function picks(cluster: ClusterImpl, s: Obj | null, n = 6): (string | null)[] {
  const metadataMatch = s === null ? null : match(s);
  return Array.from({ length: n }, () => cluster.chooseHost({ metadataMatch })?.address ?? null);
}
const uniq = (xs: (string | null)[]) => [...new Set(xs)].sort();

const CANARY = [
  ep("10.0.0.1", { canary: true, version: "v2" }),
  ep("10.0.0.2", { canary: false, version: "v1" }),
  ep("10.0.0.3", { canary: false, version: "v1" }),
  ep("10.0.0.4"),
];

Deno.test("subset load balancer", async (t) => {
  await t.step("criteria pick the subset whose envoy.lb values match, by content", () => {
    const { cm, cluster, g, c } = make(CANARY, {
      subset_selectors: [{ keys: ["canary"] }, { keys: ["version"] }],
    });
    assert.deepEqual(uniq(picks(cluster, { canary: true })), ["10.0.0.1"]);
    assert.deepEqual(uniq(picks(cluster, { canary: false })), ["10.0.0.2", "10.0.0.3"]);
    assert.deepEqual(uniq(picks(cluster, { version: "v1" })), ["10.0.0.2", "10.0.0.3"]);
    // "true" is not true (Envoy compares protobuf Values); keys naming no selector find nothing (NO_FALLBACK)
    assert.deepEqual(uniq(picks(cluster, { canary: "true" })), [null]);
    assert.deepEqual(uniq(picks(cluster, { canary: true, version: "v2" })), [null]);
    assert.deepEqual(uniq(picks(cluster, null)), [null]);
    assert.equal(g("lb_subsets_active"), 4);
    assert.equal(c("lb_subsets_created"), 4);
    assert.equal(c("lb_subsets_selected"), 18);
    assert.equal(c("lb_subsets_fallback"), 0);
    assert.equal(c("upstream_cx_none_healthy"), 18);
    cm.close();
    assert.equal(g("lb_subsets_active"), 0);
    assert.equal(c("lb_subsets_removed"), 4);
  });

  await t.step("fallback_policy ANY_ENDPOINT and DEFAULT_SUBSET, panic_mode_any", () => {
    const any = make(CANARY, { fallback_policy: "ANY_ENDPOINT", subset_selectors: [{ keys: ["canary"] }] });
    assert.equal(uniq(picks(any.cluster, { canary: "nope" }, 8)).length, 4);
    assert.equal(any.c("lb_subsets_fallback"), 8);
    any.cm.close();

    const def = make(CANARY, {
      fallback_policy: "DEFAULT_SUBSET",
      default_subset: { version: "v1" },
      subset_selectors: [{ keys: ["canary"] }],
    });
    assert.deepEqual(uniq(picks(def.cluster, null)), ["10.0.0.2", "10.0.0.3"]);
    def.cm.close();

    // the default subset matches nobody: panic_mode_any takes any host
    const panic = make(CANARY, {
      fallback_policy: "DEFAULT_SUBSET",
      default_subset: { version: "v9" },
      panic_mode_any: true,
      subset_selectors: [{ keys: ["canary"] }],
    });
    assert.equal(uniq(picks(panic.cluster, { canary: "x" }, 8)).length, 4);
    assert.equal(panic.c("lb_subsets_fallback"), 0);
    assert.equal(panic.c("lb_subsets_fallback_panic"), 8);
    panic.cm.close();

    // an empty default_subset matches every host
    const all = make(CANARY, { fallback_policy: "DEFAULT_SUBSET", subset_selectors: [{ keys: ["canary"] }] });
    assert.equal(uniq(picks(all.cluster, null, 8)).length, 4);
    all.cm.close();
  });

  await t.step(
    "selector fallback_policy overrides the cluster's; KEYS_SUBSET retries with fewer keys",
    () => {
      const { cm, cluster } = make([
        ep("10.0.0.1", { stage: "prod", version: "1" }),
        ep("10.0.0.2", { stage: "prod", version: "2" }),
        ep("10.0.0.3", { stage: "dev", version: "1" }),
      ], {
        fallback_policy: "ANY_ENDPOINT",
        // [stage] first: Envoy's selector trie keeps the fallback of the selector that created a node, so after
        // [version, stage] (whose sorted keys start with stage) a later [stage] would keep NOT_DEFINED
        subset_selectors: [
          { keys: ["stage"], fallback_policy: "NO_FALLBACK" },
          { keys: ["version", "stage"], fallback_policy: "KEYS_SUBSET", fallback_keys_subset: ["stage"] },
          { keys: ["version"], fallback_policy: "DEFAULT_SUBSET" },
        ],
        default_subset: { stage: "dev" },
      });
      assert.deepEqual(uniq(picks(cluster, { stage: "prod", version: "2" })), ["10.0.0.2"]);
      // no prod v3: KEYS_SUBSET falls back to stage=prod
      assert.deepEqual(uniq(picks(cluster, { stage: "prod", version: "3" })), ["10.0.0.1", "10.0.0.2"]);
      // no stage=qa: that selector says NO_FALLBACK, whatever the cluster says
      assert.deepEqual(uniq(picks(cluster, { stage: "qa" })), [null]);
      // no version 9: DEFAULT_SUBSET (stage=dev)
      assert.deepEqual(uniq(picks(cluster, { version: "9" })), ["10.0.0.3"]);
      // keys of no selector: the cluster's ANY_ENDPOINT
      assert.equal(uniq(picks(cluster, { zone: "a" }, 9)).length, 3);
      cm.close();
    },
  );

  await t.step("health inside a subset: unhealthy hosts skipped, panic when all are", () => {
    const { cm, cluster, c } = make([
      ep("10.0.0.1", { canary: true }),
      ep("10.0.0.2", { canary: true }, { health_status: "UNHEALTHY" }),
      ep("10.0.0.3", { canary: false }, { health_status: "UNHEALTHY" }),
    ], { subset_selectors: [{ keys: ["canary"] }] });
    assert.deepEqual(uniq(picks(cluster, { canary: true })), ["10.0.0.1"]);
    assert.equal(c("lb_healthy_panic"), 0);
    assert.deepEqual(uniq(picks(cluster, { canary: false }, 3)), ["10.0.0.3"]);
    assert.equal(c("lb_healthy_panic"), 3);
    cm.close();
  });

  await t.step("single_host_per_subset: one host per value, whatever its health; duplicates gauge", () => {
    const { cm, cluster, g } = make([
      ep("10.0.0.1", { id: "a" }),
      ep("10.0.0.2", { id: "b" }, { health_status: "UNHEALTHY" }),
      ep("10.0.0.3", { id: "a" }),
    ], { subset_selectors: [{ keys: ["id"], single_host_per_subset: true }] });
    assert.deepEqual(uniq(picks(cluster, { id: "a" })), ["10.0.0.1"]);
    assert.deepEqual(uniq(picks(cluster, { id: "b" })), ["10.0.0.2"]);
    assert.equal(g("lb_subsets_single_host_per_subset_duplicate"), 1);
    assert.equal(g("lb_subsets_active"), 2);
    cm.close();
  });

  await t.step(
    "list_as_any puts a host in the subset of each list element; default_subset matches lists",
    () => {
      const hosts = [ep("10.0.0.1", { tag: ["x", "y"] }), ep("10.0.0.2", { tag: ["y"] })];
      const on = make(hosts, {
        list_as_any: true,
        fallback_policy: "DEFAULT_SUBSET",
        default_subset: { tag: "x" },
        subset_selectors: [{ keys: ["tag"] }],
      });
      assert.deepEqual(uniq(picks(on.cluster, { tag: "y" })), ["10.0.0.1", "10.0.0.2"]);
      assert.deepEqual(uniq(picks(on.cluster, { tag: "x" })), ["10.0.0.1"]);
      assert.deepEqual(uniq(picks(on.cluster, { tag: "z" })), ["10.0.0.1"]);
      on.cm.close();
      const off = make(hosts, { subset_selectors: [{ keys: ["tag"] }] });
      assert.deepEqual(uniq(picks(off.cluster, { tag: "y" })), [null]);
      assert.deepEqual(uniq(picks(off.cluster, { tag: ["y"] })), ["10.0.0.2"]);
      off.cm.close();
    },
  );

  await t.step("metadata_fallback_policy FALLBACK_LIST tries each entry merged over the criteria", () => {
    const { cm, cluster } = make([
      ep("10.0.0.1", { version: "1.0", hw: "c32" }),
      ep("10.0.0.2", { version: "3.0" }),
    ], {
      metadata_fallback_policy: "FALLBACK_LIST",
      subset_selectors: [{ keys: ["version", "hw"] }, { keys: ["version"] }],
    });
    const list = [{ version: "2.0", hw: "c64" }, { hw: "c32" }, { version: "3.0" }];
    assert.deepEqual(uniq(picks(cluster, { version: "1.0", fallback_list: list })), ["10.0.0.1"]);
    assert.deepEqual(uniq(picks(cluster, { version: "1.0", fallback_list: [list[0], list[2]] })), [
      "10.0.0.2",
    ]);
    assert.deepEqual(uniq(picks(cluster, { version: "3.0", fallback_list: [] })), ["10.0.0.2"]);
    cm.close();
  });

  await t.step("locality_weight_aware and scale_locality_weight", () => {
    const loc = (zone: string, hosts: unknown[]) => ({
      locality: { zone },
      load_balancing_weight: 4,
      lb_endpoints: hosts,
    });
    const config = (scale: boolean) =>
      clusterSchema.parse({
        name: "c",
        common_lb_config: { locality_weighted_lb_config: {} },
        lb_subset_config: {
          locality_weight_aware: true,
          scale_locality_weight: scale,
          subset_selectors: [{ keys: ["ok"] }],
        },
        load_assignment: {
          endpoints: [
            loc("a", [ep("10.0.1.1", { ok: true }), ep("10.0.1.2", { ok: true })]),
            loc("b", [
              ep("10.0.2.1", { ok: true }),
              ...["2", "3", "4"].map((x) => ep(`10.0.2.${x}`, { ok: 0 })),
            ]),
          ],
        },
      });
    // unscaled: weight 4 each; scaled: b keeps 1 host of 4, weight round(4 * 1/4) = 1, a keeps 4
    for (const [scale, wantA] of [[false, 100], [true, 160]] as const) {
      const cm = createClusterManager([config(scale)], {
        stats: new StatsStore(),
        clock: new ManualClock(),
        random: seededRandom(1),
      });
      const xs = picks(cm.get("c") as ClusterImpl, { ok: true }, 200);
      assert.equal(xs.filter((x) => x?.startsWith("10.0.1.")).length, wantA, `scale ${scale}`);
      cm.close();
    }
  });

  await t.step(
    "EDS: a host's metadata changes in place; subsets follow, counted created and removed",
    async () => {
      const stats = new StatsStore();
      const cm = createClusterManager([], {
        stats,
        clock: new ManualClock(),
        random: seededRandom(1),
      }) as DynamicClusterManager;
      cm.addOrUpdate(clusterSchema.parse({
        name: "e",
        type: "EDS",
        eds_cluster_config: { eds_config: { ads: {} } },
        lb_subset_config: { fallback_policy: "ANY_ENDPOINT", subset_selectors: [{ keys: ["canary"] }] },
      }));
      const cla = (canary1: boolean) =>
        clusterLoadAssignmentSchema.parse({
          cluster_name: "e",
          endpoints: [{
            lb_endpoints: [ep("10.0.0.1", { canary: canary1 }), ep("10.0.0.2", { canary: false })],
          }],
        });
      cm.setEndpoints("e", cla(true));
      await cm.whenWarm("e");
      const cluster = cm.get("e") as ClusterImpl;
      const before = cluster.hosts()[0];
      assert.deepEqual(uniq(picks(cluster, { canary: true })), ["10.0.0.1"]);
      cm.setEndpoints("e", cla(false));
      assert.equal(cluster.hosts()[0], before, "the host object (connections, health) is kept");
      assert.deepEqual(uniq(picks(cluster, { canary: false })), ["10.0.0.1", "10.0.0.2"]);
      // no canary subset any more: ANY_ENDPOINT
      assert.deepEqual(uniq(picks(cluster, { canary: true })), ["10.0.0.1", "10.0.0.2"]);
      const g = (n: string) => stats.gauges.get(`cluster.e.${n}`)?.value ?? 0;
      const c = (n: string) => stats.counters.get(`cluster.e.${n}`)?.value ?? 0;
      assert.equal(g("lb_subsets_active"), 1);
      assert.equal(c("lb_subsets_created"), 2);
      assert.equal(c("lb_subsets_removed"), 1);
      assert.equal(c("lb_subsets_fallback"), 6);
      cm.setEndpoints("e", cla(true));
      assert.equal(g("lb_subsets_active"), 2);
      assert.equal(c("lb_subsets_created"), 3);
      cm.close();
    },
  );

  await t.step("config checks: Envoy's selector and locality rules, unsupported fields", () => {
    const bad = (subset: Obj, extra: Obj = {}) => {
      const r = clusterSchema.safeParse({ name: "c", lb_subset_config: subset, ...extra });
      assert.ok(!r.success);
      return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
    };
    assert.match(
      bad({ subset_selectors: [{ keys: ["a"], fallback_keys_subset: ["a"] }] }),
      /fallback_keys_subset can be set only for KEYS_SUBSET fallback_policy/,
    );
    assert.match(
      bad({ subset_selectors: [{ keys: ["a"], fallback_policy: "KEYS_SUBSET" }] }),
      /fallback_keys_subset cannot be empty/,
    );
    assert.match(
      bad({
        subset_selectors: [{ keys: ["a", "b"], fallback_policy: "KEYS_SUBSET", fallback_keys_subset: ["c"] }],
      }),
      /must be a subset of selector keys/,
    );
    assert.match(
      bad({
        subset_selectors: [{ keys: ["a"], fallback_policy: "KEYS_SUBSET", fallback_keys_subset: ["a"] }],
      }),
      /cannot be equal to keys/,
    );
    assert.match(
      bad({ locality_weight_aware: true, subset_selectors: [{ keys: ["a"] }] }),
      /Locality weight aware subset LB requires that a locality_weighted_lb_config be set in c/,
    );
    assert.match(bad({ allow_redundant_keys: true }), /allow_redundant_keys/);
    const meta = clusterSchema.safeParse({
      name: "c",
      load_assignment: {
        endpoints: [{
          lb_endpoints: [{ ...ep("10.0.0.1"), metadata: { typed_filter_metadata: { x: {} } } }],
        }],
      },
    });
    assert.ok(!meta.success);
    assert.match(meta.error.issues[0].message, /not supported/);
    // selectors without keys: subsetting stays off (plain LB over every host)
    const off = make(CANARY, { subset_selectors: [{ keys: [] }] });
    assert.equal(off.cluster.subsetLb, null);
    assert.equal(uniq(picks(off.cluster, { canary: true }, 8)).length, 4);
    off.cm.close();
  });
});

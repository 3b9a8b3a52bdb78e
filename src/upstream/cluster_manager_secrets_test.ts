/** Cluster warming on SDS secrets: a CDS version stays warming until its TLS context's secrets are ready. */
import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import { ManualClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { StatsStore } from "../stats/store.ts";
import { SecretRegistry } from "../transport/secret.ts";
import { upstreamSecretWait } from "../transport/tls_upstream.ts";
import { clusterSecretReadiness, createClusterManager, type SecretReadiness } from "./cluster_manager.ts";
import { type ClusterConfig, clusterLoadAssignmentSchema, clusterSchema } from "./config.ts";
import { seededRandom } from "./lb/lb.ts";

type Obj = Record<string, unknown>;

const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const tlsWithSds = (secret: string, timeout = "15s"): Obj => ({
  transport_socket: {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": UPSTREAM,
      common_tls_context: {
        validation_context_sds_secret_config: {
          name: secret,
          sds_config: { path: "/tmp/nowhere.yaml", initial_fetch_timeout: timeout },
        },
      },
    },
  },
});
const staticCfg = (name: string, addr: string, extra: Obj = {}) =>
  clusterSchema.parse({
    name,
    load_assignment: {
      endpoints: [{
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: addr, port_value: 443 } } } }],
      }],
    },
    ...extra,
  });
const edsCfg = (name: string, extra: Obj = {}) =>
  clusterSchema.parse({ name, type: "EDS", eds_cluster_config: { eds_config: { ads: {} } }, ...extra });

/** A fake readiness hook: every cluster with a transport_socket waits until `release(name)`. */
function fakeSecrets() {
  const gates = new Map<string, () => void>();
  const closed: string[] = [];
  const hook = (c: ClusterConfig): SecretReadiness | undefined => {
    if (c.transport_socket === undefined) return undefined;
    let done = false;
    const ready = new Promise<void>((r) => gates.set(c.name, r)).then(() => {
      done = true;
    });
    return {
      get ready() {
        return done ? undefined : ready;
      },
      close: () => closed.push(c.name),
    };
  };
  return { hook, release: (name: string) => gates.get(name)?.(), closed };
}

function setup(configs: ClusterConfig[], hook?: (c: ClusterConfig) => SecretReadiness | undefined) {
  const stats = new StatsStore();
  const cm = createClusterManager(configs, {
    stats,
    clock: new ManualClock(),
    random: seededRandom(1),
    shared: SharedArena.create({ capacity: 1024 }),
    secretReadiness: hook,
  });
  const g = (n: string) => stats.gauges.get(n)?.value ?? 0;
  return { cm, g };
}

const flush = () => new Promise((r) => setTimeout(r, 10));

Deno.test("cluster warming on secrets", async (t) => {
  await t.step("a new cluster stays warming (not served) until its secrets are ready", async () => {
    const f = fakeSecrets();
    const { cm, g } = setup([], f.hook);
    assert.equal(cm.addOrUpdate(staticCfg("a", "10.0.0.1", tlsWithSds("ca"))), "added");
    await flush();
    assert.equal(cm.get("a"), undefined, "no cluster before the secret: NC, not UF");
    assert.equal(cm.isWarming("a"), true);
    assert.equal(g("cluster_manager.warming_clusters"), 1);
    const warm = cm.whenWarm("a");
    f.release("a");
    assert.equal(await warm, true);
    assert.equal(cm.get("a")?.hosts()[0].address, "10.0.0.1");
    assert.equal(g("cluster_manager.warming_clusters"), 0);
    assert.deepEqual(f.closed, ["a"], "the wait is closed once warm");
    cm.close();
  });

  await t.step("an update waiting for its secrets leaves the previous version serving", async () => {
    const f = fakeSecrets();
    const { cm } = setup([], f.hook);
    cm.addOrUpdate(staticCfg("b", "10.0.0.1"));
    await cm.whenWarm("b");
    assert.equal(cm.addOrUpdate(staticCfg("b", "10.0.0.2", tlsWithSds("ca"))), "updated");
    await flush();
    assert.equal(cm.get("b")?.hosts()[0].address, "10.0.0.1", "the previous version keeps serving");
    assert.equal(cm.isWarming("b"), true);
    f.release("b");
    await cm.whenWarm("b");
    assert.equal(cm.get("b")?.hosts()[0].address, "10.0.0.2");
    cm.close();
  });

  await t.step(
    "an EDS cluster warms on endpoints and secrets; markWarm does not skip the secrets",
    async () => {
      const f = fakeSecrets();
      const { cm } = setup([], f.hook);
      cm.addOrUpdate(edsCfg("e", tlsWithSds("ca")));
      cm.markWarm("e"); // the EDS initial_fetch_timeout
      await flush();
      assert.equal(cm.isWarming("e"), true);
      assert.equal(cm.get("e"), undefined);
      f.release("e");
      assert.equal(await cm.whenWarm("e"), true);
      cm.setEndpoints(
        "e",
        clusterLoadAssignmentSchema.parse({
          cluster_name: "e",
          endpoints: [{
            lb_endpoints: [{
              endpoint: { address: { socket_address: { address: "10.0.0.3", port_value: 1 } } },
            }],
          }],
        }),
      );
      assert.equal(cm.get("e")?.hosts()[0].address, "10.0.0.3");
      cm.close();
    },
  );

  await t.step("a version replaced or removed while waiting stops waiting", () => {
    const f = fakeSecrets();
    const { cm } = setup([], f.hook);
    cm.addOrUpdate(staticCfg("c", "10.0.0.1", tlsWithSds("ca")));
    cm.addOrUpdate(staticCfg("c", "10.0.0.2", tlsWithSds("ca2")));
    assert.deepEqual(f.closed, ["c"], "the superseded version's wait closed");
    assert.equal(cm.remove("c"), true);
    assert.deepEqual(f.closed, ["c", "c"]);
    cm.close();
  });

  await t.step(
    "bootstrap clusters serve at once (the server's initial fetch waits for their secrets)",
    async () => {
      const f = fakeSecrets();
      const { cm } = setup([staticCfg("boot", "10.0.0.1", tlsWithSds("ca"))], f.hook);
      await cm.initialize();
      assert.ok(cm.get("boot"));
      assert.equal(cm.isWarming("boot"), false);
      cm.close();
    },
  );
});

Deno.test("cluster secret readiness from the registry: arrival or initial_fetch_timeout", async () => {
  const r = new SecretRegistry();
  const cfg = staticCfg("t", "10.0.0.1", tlsWithSds("late", "0.05s"));
  assert.equal(clusterSecretReadiness(staticCfg("plain", "10.0.0.1")), undefined);
  const ts = cfg.transport_socket!;
  assert.equal(ts.kind, "tls");
  const w = upstreamSecretWait((ts as { config: Parameters<typeof upstreamSecretWait>[0] }).config, r)!;
  assert.ok(w.ready !== undefined);
  await w.ready;
  assert.equal(w.ready, undefined);
  assert.ok(r.isSettled("late"), "timed out");
  assert.equal(r.get("late"), undefined);
  // a later wait on the same secret does not wait again
  const again = upstreamSecretWait((ts as { config: Parameters<typeof upstreamSecretWait>[0] }).config, r)!;
  assert.equal(again.ready, undefined);
  again.close();
  w.close();
});

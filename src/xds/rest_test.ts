/**
 * REST-JSON xDS against an independent management server: a python3 stdlib http.server that serves the
 * DiscoveryResponse in a file the test rewrites, records every DiscoveryRequest and answers 304 when the
 * request's version_info is the one it serves.
 */
import assert from "node:assert/strict";
import { systemClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { JitteredBackoff } from "./backoff.ts";
import { RestTransport } from "./rest.ts";
import { NACK_CODE, Subscription } from "./subscription.ts";
import { type DiscoveryRequest, TYPE_URLS } from "./types.ts";
import { type RestXdsServer, startRestXdsServer } from "../../tests/xds_rest_server.ts";

const CDS = TYPE_URLS.cluster;

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Serves `names` as the CDS response at `version` (clusters with a 1 s connect timeout). */
function serve(server: RestXdsServer, version: string, names: string[]): Promise<void> {
  return server.serve("clusters", version, names.map((name) => ({ name, connect_timeout: "1s" })));
}

/** Drops consecutive duplicates (a 304 poll repeats the last request). */
function distinct(rs: DiscoveryRequest[]): DiscoveryRequest[] {
  return rs.filter((r, i) => i === 0 || JSON.stringify(r) !== JSON.stringify(rs[i - 1]));
}

Deno.test("REST xDS: ACK, NACK with error_detail, 304, server restart with back-off then recovery", async () => {
  await using server = await startRestXdsServer();
  await serve(server, "v1", ["a"]);
  const port = server.port;
  const store = new StatsStore();
  const applied: string[] = [];
  const sub = new Subscription({
    typeUrl: CDS,
    stats: store.scope("cluster_manager.cds"),
    clock: systemClock,
    initialFetchTimeoutMs: 15_000,
    validateAndApply: (u) => {
      if (u.resources.has("bad")) return Promise.resolve('Cluster "bad": unknown lb_policy');
      applied.push(`${u.version}:${[...u.resources.keys()].join(",")}:-${u.removed.join(",")}`);
      return Promise.resolve(undefined);
    },
  });
  const delays: number[] = [];
  const backoff = new (class extends JitteredBackoff {
    override next(): number {
      const d = super.next();
      delays.push(d);
      return d;
    }
  })(40, 200, () => 0.5);
  let up = true;
  const node = { id: "node-1", cluster: "svc", locality: { zone: "az1" }, metadata: { k: "v" } };
  const transport = new RestTransport(sub, {
    clusterName: "xds",
    resolveCluster: (name) => (name === "xds" && up ? { host: "127.0.0.1", port } : undefined),
    node,
    refreshDelayMs: 30,
    requestTimeoutMs: 1000,
    clock: systemClock,
    random: () => 0.5,
    controlPlane: store.scope("control_plane"),
    backoff,
  });
  const counter = (n: string) => store.counters.get(`cluster_manager.cds.${n}`)?.value ?? 0;
  const connected = () => store.gauges.get("control_plane.connected_state")?.value;
  try {
    transport.start();
    await waitFor(
      "v1 applied and re-polled",
      async () => (await server.requests() as unknown as DiscoveryRequest[]).length >= 3,
    );
    assert.deepEqual(applied, ["v1:a:-"]);
    assert.ok(counter("update_success") >= 2, "the 304 polls count as successes");
    assert.equal(connected(), 1);

    await serve(server, "v2", ["a", "bad"]);
    await waitFor("a NACK", () => counter("update_rejected") >= 2);
    await serve(server, "v3", ["b"]);
    await waitFor("v3 applied", () => applied.length === 2);
    assert.deepEqual(applied, ["v1:a:-", "v3:b:-a"]);
    await waitFor(
      "v3 ACK sent",
      async () =>
        (await server.requests() as unknown as DiscoveryRequest[]).some((r) => r.version_info === "v3"),
    );

    const nack = { code: NACK_CODE, message: 'Cluster "bad": unknown lb_policy' };
    const seq = distinct(await server.requests() as unknown as DiscoveryRequest[]);
    assert.deepEqual(seq.slice(0, 4), [
      { node, type_url: CDS },
      { version_info: "v1", node, type_url: CDS, response_nonce: "1" },
      { version_info: "v1", node, type_url: CDS, response_nonce: "2", error_detail: nack },
      { version_info: "v1", node, type_url: CDS, response_nonce: "3", error_detail: nack },
    ]);
    const last = seq.at(-1)!;
    assert.equal(last.version_info, "v3");
    assert.equal(last.error_detail, undefined, "the ACK after a NACK has no error_detail");
    assert.ok(
      seq.slice(3).every((r, i, a) => r.error_detail || a.slice(i).every((x) => !x.error_detail)),
      "NACKs, then ACKs only",
    );

    // the management server goes away: failures back off, the last good config stays
    await server.kill();
    const failuresBefore = counter("update_failure");
    await waitFor("three failures", () => counter("update_failure") >= failuresBefore + 3);
    assert.equal(connected(), 0);
    assert.deepEqual(delays.slice(0, 3), [20, 40, 80], "jittered exponential back-off");
    assert.deepEqual([...sub.resources.keys()], ["b"]);

    await serve(server, "v4", ["b", "c"]);
    await server.restart();
    await waitFor("v4 applied after the restart", () => applied.length === 3, 10_000);
    assert.equal(applied[2], "v4:b,c:-");
    assert.equal(connected(), 1);
    assert.equal(store.gauges.get("control_plane.pending_requests")?.value ?? 0, 0);
    up = false; // an unresolvable cluster is a failure too, never a throw
    await waitFor("an unresolved cluster counted", () => connected() === 0);
  } finally {
    await transport.close();
  }
});

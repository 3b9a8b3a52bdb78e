import assert from "node:assert/strict";
import type { HostRecord } from "../discovery/types.ts";
import { StatsStore } from "../stats/store.ts";
import { TYPE_URLS } from "../xds/types.ts";
import { ControlPlane } from "./control_plane.ts";
import type { EndpointSource } from "./endpoints.ts";
import { meshPage, meshReport, MeshState, REST_LEASE_MS } from "./mesh.ts";
import { SECRET_TYPE_URL } from "./types.ts";

/** An in-memory registry double for the snapshot's EndpointSource contract (the real ones are tested e2e). */
class Hosts implements EndpointSource {
  readonly changeListeners = new Set<(service: string | null) => void>();
  readonly data = new Map<string, HostRecord[]>();
  failing = false;
  watched: ReadonlySet<string> = new Set();
  set(service: string, ports: number[]): void {
    this.data.set(service, ports.map((port) => host(service, port)));
    for (const l of this.changeListeners) l(service);
  }
  hosts(service: string): Promise<readonly HostRecord[]> {
    if (this.failing) return Promise.reject(new Error("registry down"));
    return Promise.resolve(this.data.get(service) ?? []);
  }
  services(): Promise<string[]> {
    return Promise.resolve([...this.data.keys()]);
  }
  watch(s: ReadonlySet<string>): void {
    this.watched = s;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function host(service: string, port: number): HostRecord {
  return {
    service,
    ip_address: "10.0.0.1",
    port,
    revision: "r",
    service_repo_name: service,
    last_check_in: 0,
    tags: { az: "a" },
  };
}

async function inputs(dir: string, extra = ""): Promise<void> {
  await Deno.mkdir(`${dir}/m`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/d.yaml`,
    `limits:\n  timeout: { default: 5s, max: 30s }\n${extra}`,
  );
  await Deno.writeTextFile(`${dir}/m/a.yaml`, "service: a\nport: 8080\nupstreams:\n  - service: b\n");
  await Deno.writeTextFile(`${dir}/m/b.yaml`, "service: b\nport: 8081\nupstreams:\n  - service: c\n");
  await Deno.writeTextFile(`${dir}/m/c.yaml`, "service: c\nport: 8082\nhealth_check: { path: /hc }\n");
}

const node = (cluster: string, id = `${cluster}-1`) => ({ id, cluster });

Deno.test("control plane: per-node snapshots, content versions, changes reach only the nodes they touch", async () => {
  const dir = await Deno.makeTempDir();
  const hosts = new Hosts();
  const cp = new ControlPlane({
    paths: { manifests: `${dir}/m`, defaults: `${dir}/d.yaml` },
    endpoints: hosts,
    stats: new StatsStore(),
    watchIntervalMs: 0,
  });
  const changes: string[][] = [];
  cp.cache.changeListeners.add((c) => changes.push(c === null ? ["*"] : [...c].sort()));
  try {
    await inputs(dir);
    hosts.set("b", [1, 2]);
    hosts.set("c", [3]);
    assert.equal(await cp.start(), true);
    assert.deepEqual([...hosts.watched].sort(), ["b", "c"]);
    // a gets exactly cluster b (+ its local service); b gets c; c gets no upstream
    const clusters = async (
      n: string,
    ) => [...(await cp.cache.resolve(node(n), TYPE_URLS.cluster, null)).keys()];
    assert.deepEqual(await clusters("a"), ["local_service", "b"]);
    assert.deepEqual(await clusters("b"), ["local_service", "c"]);
    assert.deepEqual(await clusters("c"), ["local_service"]);
    // a node without a manifest gets nothing at all (and asking by name does not leak others' resources)
    assert.deepEqual(await clusters("nobody"), []);
    assert.equal((await cp.cache.resolve(node("nobody"), TYPE_URLS.endpoint, ["b"])).size, 0);
    assert.equal((await cp.cache.resolve(node("a"), TYPE_URLS.endpoint, ["c"])).size, 0, "a does not call c");
    const eds = await cp.cache.resolve(node("a"), TYPE_URLS.endpoint, null);
    assert.deepEqual([...eds.keys()], ["b"]);
    // the API listener of an upstream only when named
    assert.deepEqual([...(await cp.cache.resolve(node("a"), TYPE_URLS.listener, null)).keys()], [
      "ingress",
      "egress",
    ]);
    assert.deepEqual([...(await cp.cache.resolve(node("a"), TYPE_URLS.listener, ["b"])).keys()], ["b"]);

    // the same content has the same version (a second control plane, or a restart, agrees)
    const v1 = cp.cache.nodeVersion("a");
    changes.length = 0;
    await cp.reload();
    assert.equal(cp.cache.nodeVersion("a"), v1);
    assert.deepEqual(changes, []);

    // hosts of b change: only a (which calls b) is told
    hosts.set("b", [1, 2, 4]);
    await waitUntil(() => changes.length > 0);
    assert.deepEqual(changes, [["a"]]);
    const eds2 = await cp.cache.resolve(node("a"), TYPE_URLS.endpoint, ["b"]);
    assert.notEqual(eds2.get("b")!.version, eds.get("b")!.version);

    // the registry fails: the last assignment stays
    hosts.failing = true;
    hosts.set("b", [9]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(
      (await cp.cache.resolve(node("a"), TYPE_URLS.endpoint, ["b"])).get("b")!.version,
      eds2.get("b")!.version,
    );
    hosts.failing = false;

    // a manifest edit: only the node whose manifest changed
    changes.length = 0;
    await Deno.writeTextFile(
      `${dir}/m/b.yaml`,
      "service: b\nport: 8081\nupstreams:\n  - service: c\n    timeout: 7s\n",
    );
    await cp.reload();
    assert.deepEqual(changes, [["b"]]);
  } finally {
    await cp.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control plane: a bad file keeps its last good version; secrets come from files", async () => {
  const dir = await Deno.makeTempDir();
  const hosts = new Hosts();
  const cp = new ControlPlane({
    paths: { manifests: `${dir}/m`, defaults: `${dir}/d.yaml` },
    endpoints: hosts,
    stats: new StatsStore(),
    watchIntervalMs: 0,
  });
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, "CERT-1");
    await Deno.writeTextFile(`${dir}/key.pem`, "KEY-1");
    await inputs(
      dir,
      `secrets:\n  - { name: s1, certificate_chain: ${dir}/cert.pem, private_key: ${dir}/key.pem }\n`,
    );
    await Deno.writeTextFile(
      `${dir}/edge.yaml`,
      "port: 8443\ntls_secret: s1\nroutes:\n  - { prefix: /, service: a }\n",
    );
    cp.paths.edge = `${dir}/edge.yaml`;
    hosts.set("c", [3, 4]);
    assert.equal(await cp.start(), true);
    const secret = async () => (await cp.cache.resolve(node("edge"), SECRET_TYPE_URL, null)).get("s1");
    const s1 = await secret();
    assert.ok(s1, "the edge gets its certificate");
    assert.equal((await cp.cache.resolve(node("a"), SECRET_TYPE_URL, ["s1"])).size, 0, "a service does not");
    // a rotated certificate is a new version
    await Deno.writeTextFile(`${dir}/cert.pem`, "CERT-2");
    await cp.reload();
    assert.notEqual((await secret())!.version, s1.version);

    // c breaks (syntax), b breaks (knob over the bound): both keep their last good versions
    const bBefore = cp.cache.nodeVersion("b");
    await Deno.writeTextFile(`${dir}/m/c.yaml`, "service: c\nport: [\n");
    await Deno.writeTextFile(
      `${dir}/m/b.yaml`,
      "service: b\nport: 8081\nupstreams:\n  - { service: c, timeout: 99s }\n",
    );
    await cp.reload();
    assert.equal(cp.errors.length, 2, cp.errors.join("\n"));
    assert.match(
      cp.errors[0],
      /m\/b\.yaml:4:28: upstreams\[0\]\.timeout: timeout 99000ms is above the maximum 30000ms$/,
    );
    assert.match(cp.errors[1], /m\/c\.yaml:3:1: YAML syntax error/);
    assert.deepEqual([...cp.inputs!.kept].map((f) => f.slice(dir.length)).sort(), ["/m/b.yaml", "/m/c.yaml"]);
    assert.equal(cp.cache.nodeVersion("b"), bBefore);
    assert.deepEqual(cp.cache.nodeClusters().sort(), ["a", "b", "c", "edge"]);
    // a new manifest naming the broken c still passes: c's last good version counts
    await Deno.writeTextFile(`${dir}/m/d.yaml`, "service: d\nport: 8083\nupstreams:\n  - service: c\n");
    await cp.reload();
    assert.ok(cp.cache.hasNode("d"), cp.errors.join("\n"));
  } finally {
    await cp.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mesh report: coverage, proxies without manifest, NACKs with the rejected version, REST leases", () => {
  let now = 1_000_000;
  const mesh = new MeshState(new StatsStore(), () => now);
  const a1 = { id: "10.0.0.1", cluster: "a" };
  mesh.connected(a1, "s1", "ads");
  mesh.sent(a1, TYPE_URLS.cluster, "v2");
  mesh.nacked(a1, TYPE_URLS.cluster, "v1", "bad cluster");
  mesh.connected({ id: "x-1", cluster: "x" }, "s2", "ads");
  mesh.connected({ id: "rest-1", cluster: "b" }, "rest:rest-1:cds", "rest");
  const registered = new Map<string, readonly HostRecord[]>([
    ["a", [{ ...host("a", 80), ip_address: "10.0.0.1" }, { ...host("a", 80), ip_address: "10.0.0.2" }]],
    ["b", [{ ...host("b", 80), ip_address: "10.0.1.1" }]],
    ["z", [{ ...host("z", 80), ip_address: "10.0.2.1" }]],
  ]);
  const report = meshReport({
    mesh,
    registered,
    manifests: new Set(["a", "b"]),
    errors: ["m/b.yaml:1:1: x: y"],
    nodeVersion: () => "v",
  }) as Record<string, unknown>;
  const services = report.services as Record<string, unknown>[];
  assert.deepEqual(services.map((s) => [s.service, s.hosts, s.hosts_with_proxy, s.proxies_connected]), [
    ["a", 2, 1, 1],
    ["b", 1, 0, 1],
    ["z", 1, 0, 0],
  ]);
  assert.deepEqual(report.services_with_hosts_but_no_proxy, ["z"]);
  assert.deepEqual(report.proxies_without_manifest, [{ id: "x-1", cluster: "x" }]);
  const nacks = report.nacks as Record<string, unknown>[];
  assert.equal(nacks[0].version, "v2");
  assert.equal(nacks[0].kept, "v1");
  // the NACK clears once a newer version is ACKed
  mesh.sent(a1, TYPE_URLS.cluster, "v3");
  mesh.acked(a1, TYPE_URLS.cluster, "v3");
  assert.equal(mesh.proxies.get("10.0.0.1")!.types.get(TYPE_URLS.cluster)!.nacked, undefined);
  // a REST poller is connected for the lease, then not
  assert.ok(mesh.isConnected(mesh.proxies.get("rest-1")!));
  now += REST_LEASE_MS + 1;
  assert.ok(!mesh.isConnected(mesh.proxies.get("rest-1")!));
  assert.match(meshPage(report), /Hosts but no proxy: z/);
  assert.match(meshPage(report), /m\/b\.yaml:1:1/);
});

async function waitUntil(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

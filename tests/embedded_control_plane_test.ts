/**
 * A small site in one process: `nuncio -c` with a tiny bootstrap whose `nuncio.bootstrap.control_plane`
 * runs the control plane and its registry inside the proxy; the proxy is the edge and takes its own config
 * over ADS from it. Origins check in through the embedded registry's v1 API. `--mode validate` reports
 * missing inputs with the field path.
 */
import assert from "node:assert/strict";
import { waitFor } from "./health_helpers.ts";
import { spawnNuncio } from "./helpers.ts";
import { adsBootstrap, checkIn, distinctPorts, getWithHost, loopback, waitLive } from "./mesh_helpers.ts";
import { makePki } from "./tls_certs.ts";

function bootstrap(
  dir: string,
  admin: number,
  http: number,
  grpc: number,
  manifests = `${dir}/m`,
  node = { id: "edge-1", cluster: "edge" },
): string {
  return adsBootstrap(node, admin, grpc, {
    bootstrap_extensions: [{
      name: "nuncio.bootstrap.control_plane",
      typed_config: {
        "@type": "type.googleapis.com/nuncio.control_plane.v1.EmbeddedControlPlane",
        manifests,
        defaults: `${dir}/defaults.yaml`,
        edge: `${dir}/edge.yaml`,
        address: loopback(http),
        grpc_address: loopback(grpc),
        watch_interval: "0.2s",
      },
    }],
  });
}

Deno.test("embedded control plane: one nuncio -c serves a small site and configures itself", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_embedded_cp_" });
  const [admin, http, grpc, edge] = distinctPorts(4);
  const origins = ["o1", "o2"].map((name) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response(name))
  );
  await Deno.mkdir(`${dir}/m`);
  await Deno.writeTextFile(`${dir}/defaults.yaml`, "ingress_address: 127.0.0.1\n");
  await Deno.writeTextFile(`${dir}/m/shop.yaml`, "service: shop\nport: 8080\n");
  await Deno.writeTextFile(
    `${dir}/edge.yaml`,
    `port: ${edge}\naddress: 127.0.0.1\nroutes:\n  - { prefix: /, service: shop }\n`,
  );
  await Deno.writeTextFile(`${dir}/bootstrap.json`, bootstrap(dir, admin, http, grpc));
  const proxy = spawnNuncio(["-c", `${dir}/bootstrap.json`, "--concurrency", "1", "-l", "warn"]);
  try {
    await waitLive(admin);
    // no host yet: the cluster exists and is empty (503 no healthy upstream)
    const empty = await fetch(`http://127.0.0.1:${edge}/x`);
    await empty.body?.cancel();
    assert.equal(empty.status, 503);
    for (const [i, o] of origins.entries()) {
      assert.equal(await checkIn(http, "shop", o.addr.port, { instance_id: `shop-${i}` }), 200);
    }
    const seen = new Set<string>();
    await waitFor("both origins answer through the edge", async () => {
      const r = await fetch(`http://127.0.0.1:${edge}/x`, { headers: { connection: "close" } });
      seen.add(await r.text());
      return seen.has("o1") && seen.has("o2");
    }, 10_000);
    // the proxy's own admin shows the config it took from itself; the mesh report shows the proxy
    const dump = await (await fetch(`http://127.0.0.1:${admin}/config_dump`)).text();
    assert.match(dump, /"name": "edge"/);
    const mesh = await (await fetch(`http://127.0.0.1:${http}/mesh?format=json`)).json();
    assert.deepEqual(mesh.proxies.map((p: { id: string; connected: boolean }) => [p.id, p.connected]), [[
      "edge-1",
      true,
    ]]);
    assert.deepEqual(mesh.nacks, []);
    const shop = mesh.services.find((s: { service: string }) => s.service === "shop");
    assert.equal(shop.hosts, 2);
  } finally {
    proxy.proc.kill("SIGTERM");
    const { code, stderr } = await proxy.done;
    for (const o of origins) await o.shutdown();
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, stderr);
  }
});

Deno.test("embedded control plane: --mode validate names a missing manifests directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_embedded_cp_" });
  try {
    await Deno.writeTextFile(`${dir}/defaults.yaml`, "{}\n");
    await Deno.writeTextFile(`${dir}/edge.yaml`, "port: 1\nroutes: [{ prefix: /, service: x }]\n");
    await Deno.writeTextFile(`${dir}/b.json`, bootstrap(dir, 1, 2, 3, `${dir}/nope`));
    const p = spawnNuncio(["--mode", "validate", "-c", `${dir}/b.json`]);
    const { code, stderr } = await p.done;
    assert.equal(code, 1);
    assert.match(stderr, /bootstrap_extensions\[0\]\.typed_config\.manifests: Cannot read .*nope/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embedded control plane: the edge's certificate over SDS from files; a bad one is NACKed and shown", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_embedded_cp_" });
  await using pki = await makePki();
  const edgeLeaf = await pki.leaf("edge", "localhost", ["DNS:localhost"]);
  const otherLeaf = await pki.leaf("other", "other", ["DNS:other"]);
  const [admin, http, grpc, edge] = distinctPorts(4);
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("o1"));
  const defaults = (key: string) =>
    `ingress_address: 127.0.0.1\nsecrets:\n  - { name: edge-cert, certificate_chain: ${edgeLeaf.cert}, private_key: ${key} }\n`;
  await Deno.mkdir(`${dir}/m`);
  await Deno.writeTextFile(`${dir}/defaults.yaml`, defaults(edgeLeaf.key));
  await Deno.writeTextFile(`${dir}/m/shop.yaml`, "service: shop\nport: 8080\n");
  await Deno.writeTextFile(
    `${dir}/edge.yaml`,
    `port: ${edge}\naddress: 127.0.0.1\ntls_secret: edge-cert\nroutes:\n  - { prefix: /, service: shop }\n`,
  );
  await Deno.writeTextFile(`${dir}/bootstrap.json`, bootstrap(dir, admin, http, grpc));
  const proxy = spawnNuncio(["-c", `${dir}/bootstrap.json`, "--concurrency", "1", "-l", "warn"]);
  const client = Deno.createHttpClient({ caCerts: [pki.caPem] });
  try {
    await waitLive(admin);
    await checkIn(http, "shop", origin.addr.port);
    const https = `https://localhost:${edge}/x`;
    await waitFor("HTTPS through the edge", async () => {
      const r = await fetch(https, { client }).catch(() => undefined);
      return r !== undefined && (await r.text()) === "o1";
    }, 10_000);
    // the network team puts a key that does not match: the proxy NACKs, the control plane shows why
    await Deno.writeTextFile(`${dir}/defaults.yaml`, defaults(otherLeaf.key));
    let nack: { type: string; message: string } | undefined;
    await waitFor("the NACK in /mesh", async () => {
      const mesh = await (await fetch(`http://127.0.0.1:${http}/mesh?format=json`)).json();
      nack = mesh.nacks[0];
      return nack !== undefined;
    }, 10_000);
    assert.equal(nack!.type, "Secret");
    assert.match(nack!.message, /Private key does not match the certificate/);
    // and the edge keeps serving with the certificate it had
    assert.equal(await (await fetch(https, { client })).text(), "o1");
  } finally {
    client.close();
    proxy.proc.kill("SIGTERM");
    const { code, stderr } = await proxy.done;
    await origin.shutdown();
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, stderr);
  }
});

Deno.test("embedded control plane: canary_percent sends that share to hosts registered with canary=true", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_embedded_cp_" });
  const [admin, http, grpc, ingress, egress, edge] = distinctPorts(6);
  const origins = ["stable", "canary"].map((name) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response(name))
  );
  await Deno.mkdir(`${dir}/m`);
  await Deno.writeTextFile(
    `${dir}/defaults.yaml`,
    `ingress_address: 127.0.0.1\ningress_port: ${ingress}\negress_port: ${egress}\n`,
  );
  await Deno.writeTextFile(`${dir}/m/api.yaml`, "service: api\nport: 8080\n");
  await Deno.writeTextFile(
    `${dir}/m/web.yaml`,
    "service: web\nport: 8081\nupstreams:\n  - { service: api, canary_percent: 20 }\n",
  );
  await Deno.writeTextFile(`${dir}/edge.yaml`, `port: ${edge}\nroutes:\n  - { prefix: /, service: web }\n`);
  await Deno.writeTextFile(
    `${dir}/bootstrap.json`,
    bootstrap(dir, admin, http, grpc, `${dir}/m`, { id: "web-1", cluster: "web" }),
  );
  const proxy = spawnNuncio(["-c", `${dir}/bootstrap.json`, "--concurrency", "1", "-l", "warn"]);
  try {
    await waitLive(admin);
    for (const [i, o] of origins.entries()) {
      await checkIn(http, "api", o.addr.port, { canary: i === 1 });
    }
    const url = `http://127.0.0.1:${egress}/x`;
    await waitFor(
      "both hosts in rotation",
      async () => (await getWithHost(url, "api")).status === 200,
      10_000,
    );
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const r = await getWithHost(url, "api");
      seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
    }
    // 20 % of 300 = 60: well inside 30..100 unless the split is wrong
    const canary = seen.get("canary") ?? 0;
    assert.equal(canary + (seen.get("stable") ?? 0), 300, JSON.stringify([...seen]));
    assert.ok(canary >= 30 && canary <= 100, `canary share ${canary}/300`);
  } finally {
    proxy.proc.kill("SIGTERM");
    const { code, stderr } = await proxy.done;
    for (const o of origins) await o.shutdown();
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, stderr);
  }
});

import assert from "node:assert/strict";
import { bootstrapYaml, curl, sleep, startOrigin, startProxy, staticCluster } from "./helpers.ts";
import { downstreamTls, makePki, sClient } from "./tls_certs.ts";

type Obj = Record<string, unknown>;

function hcm(statPrefix: string, cluster: string): Obj {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type":
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: statPrefix,
      route_config: {
        name: "r",
        virtual_hosts: [{
          name: "any",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster } }],
        }],
      },
      http_filters: [{
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  };
}

function listener(name: string, chains: Obj[], extra: Obj = {}): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: chains,
    ...extra,
  };
}

/** Polls until `f` returns true (bounded); returns the last value of `f`. */
async function eventually(f: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await f()) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

Deno.test("downstream TLS", async (t) => {
  await using pki = await makePki();
  await pki.leaf("a", "a.example.com", ["DNS:a.example.com"]);
  await pki.leaf("b", "b.example.com", ["DNS:*.b.example.com"]);
  await using originA = startOrigin("A");
  await using originB = startOrigin("B");
  const clusters = [staticCluster("origin_a", [originA.port]), staticCluster("origin_b", [originB.port])];

  await t.step("filter chains chosen by SNI serve their own certificates, ALPN and filters", async () => {
    await using proxy = await startProxy(bootstrapYaml([
      listener("edge", [
        {
          filter_chain_match: { server_names: ["a.example.com"] },
          transport_socket: downstreamTls(pki, ["a"], ["h2", "http/1.1"]),
          filters: [hcm("chain_a", "origin_a")],
        },
        {
          filter_chain_match: { server_names: ["*.b.example.com"] },
          transport_socket: downstreamTls(pki, ["b"], ["http/1.1"]),
          filters: [hcm("chain_b", "origin_b")],
        },
        { filter_chain_match: { transport_protocol: "raw_buffer" }, filters: [hcm("plain", "origin_a")] },
      ], { listener_filters: [{ name: "envoy.filters.listener.tls_inspector" }] }),
    ], clusters));
    const port = proxy.port("edge");

    const a = await sClient(port, {
      servername: "a.example.com",
      alpn: ["h2", "http/1.1"],
      caPath: pki.caPath,
    });
    assert.equal(a.cn, "a.example.com", a.raw);
    assert.ok(a.verified, a.raw);
    assert.equal(a.alpn, "h2", a.raw);

    const b = await sClient(port, {
      servername: "x.b.example.com",
      alpn: ["h2", "http/1.1"],
      caPath: pki.caPath,
    });
    assert.equal(b.cn, "b.example.com", b.raw);
    assert.ok(b.verified, b.raw);
    assert.equal(b.alpn, "http/1.1", b.raw);

    // full requests: curl verifies the certificate for the name it asked for
    const ra = await curl([
      "--http1.1",
      "--cacert",
      pki.caPath,
      "--resolve",
      `a.example.com:${port}:127.0.0.1`,
      `https://a.example.com:${port}/x`,
    ]);
    assert.equal(ra.stdout, "hello from A", ra.stderr);
    assert.equal(originA.requests.at(-1)?.headers.get("x-forwarded-proto"), "https");
    const rb = await curl([
      "--cacert",
      pki.caPath,
      "--resolve",
      `deep.b.example.com:${port}:127.0.0.1`,
      `https://deep.b.example.com:${port}/y`,
    ]);
    assert.equal(rb.stdout, "hello from B", rb.stderr);
    assert.equal(originB.requests.at(-1)?.headers.get("x-forwarded-proto"), "https");
    assert.equal(proxy.stat("http.chain_a.downstream_rq_total"), 1);
    assert.equal(proxy.stat("http.chain_b.downstream_rq_total"), 1);

    // plain text on the same port goes to the raw_buffer chain
    const plain = await curl([`http://127.0.0.1:${port}/plain`]);
    assert.equal(plain.stdout, "hello from A");
    assert.equal(originA.requests.at(-1)?.headers.get("x-forwarded-proto"), "http");
    assert.equal(proxy.stat("http.plain.downstream_rq_total"), 1);

    // an SNI no chain matches: no certificate, the connection is closed
    const none = await sClient(port, { servername: "c.example.com", caPath: pki.caPath });
    assert.equal(none.cn, "");
    assert.ok(proxy.stat("listener.127.0.0.1_0.no_filter_chain_match") >= 1);
    assert.ok(proxy.stat("listener.127.0.0.1_0.ssl.handshake") >= 4);
  });

  await t.step(
    "one TLS chain: the listener socket itself is TLS; several certificates picked by SNI",
    async () => {
      await using proxy = await startProxy(bootstrapYaml([
        listener("tls", [{
          transport_socket: downstreamTls(pki, ["a", "b"], ["http/1.1"]),
          filters: [hcm("single", "origin_b")],
        }]),
      ], clusters));
      const port = proxy.port("tls");
      assert.equal(
        (await sClient(port, { servername: "a.example.com", caPath: pki.caPath })).cn,
        "a.example.com",
      );
      assert.equal(
        (await sClient(port, { servername: "q.b.example.com", caPath: pki.caPath })).cn,
        "b.example.com",
      );
      // no SNI: the first certificate
      assert.equal((await sClient(port, { caPath: pki.caPath })).cn, "a.example.com");
      const r = await curl([
        "--cacert",
        pki.caPath,
        "--resolve",
        `a.example.com:${port}:127.0.0.1`,
        `https://a.example.com:${port}/`,
      ]);
      assert.equal(r.stdout, "hello from B", r.stderr);
      assert.equal(originB.requests.at(-1)?.headers.get("x-forwarded-proto"), "https");
    },
  );

  for (const mode of ["direct", "inspected"] as const) {
    await t.step(`certificate rotation is picked up without a restart (${mode})`, async () => {
      const name = `rot_${mode}`;
      await pki.leaf(name, "rot.example.com", ["DNS:rot.example.com"]);
      const first = await pki.serialOf(`${pki.dir}/${name}.crt`);
      const chains: Obj[] = [{
        filter_chain_match: mode === "inspected" ? { server_names: ["rot.example.com"] } : {},
        transport_socket: downstreamTls(pki, [name]),
        filters: [hcm("rot", "origin_a")],
      }];
      if (mode === "inspected") chains.push({ filters: [hcm("rot_plain", "origin_a")] });
      await using proxy = await startProxy(bootstrapYaml([listener("rot", chains)], clusters));
      const port = proxy.port("rot");
      const opts = { servername: "rot.example.com", caPath: pki.caPath };
      assert.equal((await sClient(port, opts)).serial, first);

      await pki.leaf(name, "rot.example.com", ["DNS:rot.example.com"]);
      const second = await pki.serialOf(`${pki.dir}/${name}.crt`);
      assert.notEqual(second, first);
      assert.ok(await eventually(async () => (await sClient(port, opts)).serial === second), "not rotated");
      const r = await curl([
        "--cacert",
        pki.caPath,
        "--resolve",
        `rot.example.com:${port}:127.0.0.1`,
        `https://rot.example.com:${port}/`,
      ]);
      assert.equal(r.stdout, "hello from A", r.stderr);

      // a broken new file keeps the last good certificate
      await Deno.writeTextFile(`${pki.dir}/${name}.crt`, "-----BEGIN CERTIFICATE-----\nnope\n");
      await sleep(1500);
      const after = await sClient(port, opts);
      assert.equal(after.serial, second, after.raw);
      assert.ok(after.verified);
    });
  }
});

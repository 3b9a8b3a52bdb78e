/**
 * SDS over ADS end to end (state-of-the-world GRPC and DELTA_GRPC): nuncio (main.ts, a child process) takes a static listener's
 * certificate from `tls_certificate_sds_secret_configs: [{name: server_cert, sds_config: {ads: {}}}]`, served by
 * a grpc-js management server that is not nuncio's code (tests/xds_grpc_driver.ts). curl and openssl s_client see
 * certificate A; the server sets B and a new connection sees B without a restart; a secret whose key does not
 * match its certificate is NACKed on the ADS stream (with the reason and the last good version) and B keeps
 * serving. A second listener takes its own secret (a second SDS watch on the same ADS stream).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { curl, refusedPort, startOrigin } from "./helpers.ts";
import { makePki, sClient, type TestPki } from "./tls_certs.ts";
import { AutoXdsServer, type Json, waitFor as until } from "./xds_grpc_driver.ts";
import { HCM, ROUTER, startNuncio, staticCluster } from "./xds_e2e_helpers.ts";

const SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const ADS_METHODS = {
  GRPC: "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
  DELTA_GRPC: "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
};

function listener(name: string, port: number, secret: string): Json {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": DOWNSTREAM,
          common_tls_context: {
            tls_certificate_sds_secret_configs: [{
              name: secret,
              sds_config: { ads: {}, resource_api_version: "V3" },
            }],
          },
        },
      },
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: name,
          route_config: {
            name: "r",
            virtual_hosts: [{
              name: "any",
              domains: ["*"],
              routes: [{ match: { prefix: "/" }, route: { cluster: "origin" } }],
            }],
          },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
        },
      }],
    }],
  };
}

function bootstrap(
  apiType: string,
  o: { xds: number; admin: number; edge: number; other: number; origin: number },
): string {
  return stringify({
    node: { id: "node-1", cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: o.admin } } },
    dynamic_resources: {
      ads_config: {
        api_type: apiType,
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
      },
    },
    static_resources: {
      listeners: [listener("edge", o.edge, "server_cert"), listener("other", o.other, "other_cert")],
      clusters: [staticCluster("xds", o.xds, true), staticCluster("origin", o.origin)],
    },
  });
}

/** Secret `name` with `leaf`'s certificate and `keyOf`'s private key, inline. */
async function certSecret(pki: TestPki, name: string, leaf: string, keyOf = leaf): Promise<Json> {
  return {
    name,
    tls_certificate: {
      certificate_chain: { inline_string: await Deno.readTextFile(`${pki.dir}/${leaf}.crt`) },
      private_key: { inline_string: await Deno.readTextFile(`${pki.dir}/${keyOf}.key`) },
    },
  };
}

for (const apiType of ["GRPC", "DELTA_GRPC"] as const) {
  Deno.test(`SDS over ADS (${apiType}) end to end: certificate A, rotated to B, a bad secret NACKed while B serves`, async () => {
    const method = ADS_METHODS[apiType];
    await using pki = await makePki();
    await pki.leaf("a", "a.sds.test", ["DNS:sds.test"]);
    await pki.leaf("b", "b.sds.test", ["DNS:sds.test"]);
    await pki.leaf("o", "other.sds.test", ["DNS:sds.test"]);
    const serialA = await pki.serialOf(`${pki.dir}/a.crt`);
    const serialB = await pki.serialOf(`${pki.dir}/b.crt`);
    const serialO = await pki.serialOf(`${pki.dir}/o.crt`);
    await using origin = startOrigin("plain");
    await using xds = await AutoXdsServer.start();
    const ports = { edge: refusedPort(), other: refusedPort(), admin: refusedPort() };
    const other = await certSecret(pki, "other_cert", "o");
    await xds.set(SECRET, "s1", [await certSecret(pki, "server_cert", "a"), other]);
    await using nuncio = await startNuncio(
      bootstrap(apiType, { ...ports, xds: xds.port, origin: origin.port }),
      ports.admin,
      1,
    );
    const https = (port = ports.edge) =>
      curl([
        "-sS",
        "--cacert",
        pki.caPath,
        "--resolve",
        `sds.test:${port}:127.0.0.1`,
        `https://sds.test:${port}/`,
      ]);
    const seen = (port = ports.edge) => sClient(port, { servername: "sds.test", caPath: pki.caPath });

    // certificate A from SDS over ADS; the other listener's secret (a second SDS watch) arrives on the same stream
    await waitFor(
      "certificate A",
      async () => (await seen().catch(() => undefined))?.serial === serialA,
      15_000,
    );
    const a = await seen();
    assert.equal(a.cn, "a.sds.test");
    assert.ok(a.verified, a.raw);
    const ra = await https();
    assert.equal(ra.stdout, "hello from plain", ra.stderr);
    await waitFor("the other certificate", async () => (await seen(ports.other)).serial === serialO, 10_000);
    assert.equal((await https(ports.other)).stdout, "hello from plain");
    assert.equal(await nuncio.stat("sds.server_cert.update_success"), 1);
    assert.equal(await nuncio.stat("sds.other_cert.update_success"), 1);
    const secrets = () => xds.history.filter((r) => r.req.type_url === SECRET);
    const first = secrets()[0];
    assert.equal(first.method, method);
    const asked = secrets().flatMap((r) => r.req.resource_names ?? r.req.resource_names_subscribe ?? []);
    assert.deepEqual([...new Set(asked)].sort(), ["other_cert", "server_cert"]);
    await until("the ACK of s1", () => secrets().some((r) => r.req.response_nonce && !r.req.error_detail));

    // rotation: a new connection sees B, no restart; the other secret is unchanged
    await xds.set(SECRET, "s2", [await certSecret(pki, "server_cert", "b"), other]);
    await waitFor("certificate B", async () => (await seen()).serial === serialB, 10_000);
    assert.equal((await seen()).cn, "b.sds.test");
    const rb = await https();
    assert.equal(rb.stdout, "hello from plain", rb.stderr);
    if (apiType === "DELTA_GRPC") {
      assert.equal(await nuncio.stat("sds.other_cert.update_success"), 1, "delta: only the changed secret");
    }

    // a key that does not match its certificate: NACKed with the reason; B stays
    await xds.set(SECRET, "s3", [await certSecret(pki, "server_cert", "a", "b"), other]);
    const nack = await until("the NACK", () => secrets().find((r) => r.req.error_detail !== undefined));
    assert.match(
      nack.req.error_detail.message,
      /Secret "server_cert": tls_certificate: Private key does not match the certificate/,
    );
    if (apiType === "GRPC") assert.equal(nack.req.version_info, "s2", "the last good version");
    assert.ok(nack.req.response_nonce);
    assert.equal(await nuncio.stat("sds.server_cert.update_rejected"), 1);
    assert.equal((await seen()).serial, serialB);
    const rc = await https();
    assert.equal(rc.stdout, "hello from plain", rc.stderr);
    assert.equal((await seen(ports.other)).serial, serialO);
    assert.ok(xds.history.every((r) => r.method === method && r.stream === first.stream), "one ADS stream");
  });
}

import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import { makePki } from "../../tests/tls_certs.ts";
import { certsJson } from "./certs.ts";

const DOWN = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UP = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

Deno.test("/certs lists every TLS context's CA and certificates in Envoy's shape", async () => {
  await using pki = await makePki();
  const leaf = await pki.leaf("srv", "srv.example.com", [
    "DNS:srv.example.com",
    "URI:spiffe://x/srv",
    "IP:127.0.0.1",
  ]);
  const pem = await Deno.readTextFile(leaf.cert);
  const key = await Deno.readTextFile(leaf.key);
  const now = Date.now();
  const r = await certsJson({
    bootstrapLoadedMs: now,
    bootstrap: {
      static_resources: {
        listeners: [{
          name: "l",
          filter_chains: [
            { filters: [] },
            {
              filters: [],
              transport_socket: {
                name: "envoy.transport_sockets.tls",
                typed_config: {
                  "@type": DOWN,
                  common_tls_context: {
                    tls_certificates: [{
                      certificate_chain: { filename: leaf.cert },
                      private_key: { filename: leaf.key },
                    }],
                    validation_context: { trusted_ca: { filename: pki.caPath } },
                  },
                },
              },
            },
          ],
        }],
        clusters: [
          { name: "plain" },
          {
            name: "tls",
            transport_socket: {
              name: "envoy.transport_sockets.tls",
              typed_config: {
                "@type": UP,
                common_tls_context: {
                  tls_certificates: [{
                    certificate_chain: { inline_string: pem },
                    private_key: { inline_string: key },
                  }],
                },
              },
            },
          },
        ],
      },
    },
  }, now);
  const serial = (await pki.serialOf(leaf.cert)).toLowerCase().replace(/^0+/, "");
  assert.equal(r.certificates.length, 2);
  const [down, up] = r.certificates;
  assert.equal(down.ca_cert.length, 1);
  assert.equal(down.ca_cert[0].path, pki.caPath);
  assert.deepEqual(down.cert_chain[0].subject_alt_names, [
    { dns: "srv.example.com" },
    { uri: "spiffe://x/srv" },
    { ip_address: "127.0.0.1" },
  ]);
  assert.equal(down.cert_chain[0].path, leaf.cert);
  assert.equal(down.cert_chain[0].serial_number, serial.length % 2 ? `0${serial}` : serial);
  // test certificates live two days
  assert.ok(["1", "2"].includes(down.cert_chain[0].days_until_expiration));
  assert.match(down.cert_chain[0].valid_from, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(down.cert_chain[0].expiration_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(up.ca_cert, []);
  assert.equal(up.cert_chain[0].path, "<inline>");

  const none = await certsJson({ bootstrapLoadedMs: now, bootstrap: { static_resources: {} } });
  assert.deepEqual(none, { certificates: [] });
});

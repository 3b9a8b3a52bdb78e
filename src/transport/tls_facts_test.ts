import assert from "node:assert/strict";
import { makePki } from "../../tests/tls_certs.ts";
import { loadTlsRuntime, tlsCrypto } from "./cert_store.ts";
import { envoySerial, parseServerHello, ServerHelloSniffer, x509Facts } from "./tls_facts.ts";

/** A handshake record holding `msgs` ([type, body] pairs). */
function record(...msgs: [number, number[]][]): number[] {
  const hs: number[] = [];
  for (const [t, b] of msgs) hs.push(t, (b.length >> 16) & 255, (b.length >> 8) & 255, b.length & 255, ...b);
  return [22, 3, 3, hs.length >> 8, hs.length & 255, ...hs];
}

/** A ServerHello body: version 0x0303, session id, suite, extensions. */
function serverHello(sid: number[], suite: number, exts: [number, number[]][]): number[] {
  const e: number[] = [];
  for (const [t, b] of exts) e.push(t >> 8, t & 255, b.length >> 8, b.length & 255, ...b);
  return [
    3,
    3,
    ...new Array(32).fill(7),
    sid.length,
    ...sid,
    suite >> 8,
    suite & 255,
    0,
    e.length >> 8,
    e.length & 255,
    ...e,
  ];
}

Deno.test("ServerHello facts: version, cipher, curve, resumption", async (t) => {
  await t.step("TLS 1.3: supported_versions, key_share group; a pre_shared_key means resumed", () => {
    const full = parseServerHello(
      new Uint8Array(record([2, serverHello([1, 2], 0x1302, [[43, [3, 4]], [51, [0, 0x1d, 0, 0]]])])),
    );
    assert.deepEqual(full, {
      version: "TLSv1.3",
      cipher: "TLS_AES_256_GCM_SHA384",
      sessionId: "",
      curve: "X25519",
      resumed: false,
    });
    const psk = parseServerHello(
      new Uint8Array(
        record([2, serverHello([], 0x1301, [[43, [3, 4]], [51, [0, 0x17, 0, 0]], [41, [0, 0]]])]),
      ),
    );
    assert.ok(psk !== null && psk !== "more" && psk.resumed && psk.curve === "P-256");
  });

  await t.step("TLS 1.2: the curve comes from the ServerKeyExchange, possibly in a later record", () => {
    const hello = record([2, serverHello([0xab, 0xcd], 0xc02b, [])]);
    const ske = record([11, [0, 0, 0]], [12, [3, 0, 0x18, 65]]);
    assert.equal(parseServerHello(new Uint8Array(hello)), "more");
    const sniff = new ServerHelloSniffer("");
    sniff.feed(new Uint8Array(hello));
    assert.ok(sniff.wanting);
    sniff.feed(new Uint8Array(ske));
    assert.ok(!sniff.wanting);
    assert.deepEqual(sniff.facts, {
      version: "TLSv1.2",
      cipher: "ECDHE-ECDSA-AES128-GCM-SHA256",
      sessionId: "abcd",
      curve: "P-384",
      resumed: false,
    });
  });

  await t.step("TLS 1.2 resumption: the server echoes the client's session id, then ChangeCipherSpec", () => {
    const bytes = [...record([2, serverHello([0xab, 0xcd], 0xc02f, [])]), 20, 3, 3, 0, 1, 1];
    const r = parseServerHello(new Uint8Array(bytes), "abcd");
    assert.ok(r !== null && r !== "more" && r.resumed && r.curve === "");
  });

  await t.step("not a ServerHello", () => {
    assert.equal(parseServerHello(new Uint8Array([23, 3, 3, 0, 1, 0])), null);
    assert.equal(parseServerHello(new Uint8Array([22, 3])), "more");
  });
});

Deno.test("certificate facts in Envoy's spelling", async () => {
  await loadTlsRuntime();
  await using pki = await makePki();
  const leaf = await pki.leaf("a", "a.example.com", [
    "DNS:a.example.com",
    "DNS:b.example.com",
    "URI:spiffe://x/a",
  ]);
  const x = new (tlsCrypto().X509Certificate)(await Deno.readTextFile(leaf.cert));
  const f = x509Facts(x);
  assert.equal(f.subject, "CN=a.example.com");
  assert.equal(f.issuer, "CN=nuncio test CA");
  assert.deepEqual(f.dnsSanList, ["a.example.com", "b.example.com"]);
  assert.equal(f.dnsSans, "a.example.com,b.example.com");
  assert.deepEqual(f.uriSanList, ["spiffe://x/a"]);
  assert.equal(f.urlEncodedPem, encodeURIComponent(await Deno.readTextFile(leaf.cert)));
  // BoringSSL's BN_bn2hex: lower case, whole bytes
  assert.equal(envoySerial("FAB"), "0fab");
  assert.equal(envoySerial("1"), "01");
  assert.equal(envoySerial("008E12"), "8e12");
});

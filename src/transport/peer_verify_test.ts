import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import { makeCrl, makePki } from "../../tests/tls_certs.ts";
import { loadTlsRuntime, tlsCrypto } from "./cert_store.ts";
import { compilePeerValidation, type PeerCertificate, verifyPeer } from "./peer_verify.ts";
import { validationContext } from "./tls_config.ts";

Deno.test("client certificate validation as Envoy's default validator", async (t) => {
  await loadTlsRuntime();
  await using pki = await makePki();
  const a = await pki.leaf("a", "a", ["DNS:a.example.com", "URI:spiffe://mesh/a"], { clientAuth: true });
  const pem = await Deno.readTextFile(a.cert);
  const c = tlsCrypto();
  const x = new c.X509Certificate(pem);
  const leaf = new Uint8Array(x.raw);
  const ca = new Uint8Array(new c.X509Certificate(pki.caPem).raw);
  const peer: PeerCertificate = { chain: [leaf, ca], subjectAltName: x.subjectAltName ?? "", trusted: true };
  const hash = c.createHash("sha256").update(leaf).digest("hex");
  const spki = c.createHash("sha256").update(
    x.publicKey.export({ type: "spki", format: "der" }) as Uint8Array,
  )
    .digest("base64");
  const compile = (vc: Record<string, unknown>, require = false, crl?: string) =>
    compilePeerValidation(validationContext.parse(vc), vc.trusted_ca ? pki.caPem : undefined, crl, require);

  await t.step("who is asked for a certificate, and who must have one", () => {
    const caOnly = compile({ trusted_ca: { filename: pki.caPath } });
    assert.deepEqual([caOnly.request, caOnly.require], [true, false]);
    const caRequired = compile({ trusted_ca: { filename: pki.caPath } }, true);
    assert.deepEqual([caRequired.request, caRequired.require], [true, true]);
    const san = compile({
      match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "a.example.com" } }],
    });
    assert.deepEqual([san.request, san.require], [true, true]);
    // require_client_certificate without a trusted CA or matchers asks for nothing (Envoy's code)
    const nothing = compile({}, true);
    assert.deepEqual([nothing.request, nothing.require], [false, false]);
    const untrusted = compile({ trust_chain_verification: "ACCEPT_UNTRUSTED" });
    assert.deepEqual([untrusted.request, untrusted.require], [true, false]);
  });

  await t.step("chain, SANs, pins: the failure each counts", () => {
    const ca = { trusted_ca: { filename: pki.caPath } };
    assert.equal(verifyPeer(compile(ca), peer), undefined);
    assert.equal(verifyPeer(compile(ca), null), undefined);
    assert.equal(verifyPeer(compile(ca, true), null), "no_cert");
    assert.equal(verifyPeer(compile(ca), { ...peer, trusted: false }), "error");
    const uri = (exact: string) => ({
      ...ca,
      match_typed_subject_alt_names: [{ san_type: "URI", matcher: { exact } }],
    });
    assert.equal(verifyPeer(compile(uri("spiffe://mesh/a")), peer), undefined);
    assert.equal(verifyPeer(compile(uri("spiffe://mesh/b")), peer), "san");
    assert.equal(verifyPeer(compile({ verify_certificate_hash: [hash] }), peer), undefined);
    assert.equal(
      verifyPeer(compile({ verify_certificate_hash: [hash.toUpperCase().match(/../g)!.join(":")] }), peer),
      undefined,
    );
    assert.equal(verifyPeer(compile({ verify_certificate_hash: ["00".repeat(32)] }), peer), "cert_hash");
    assert.equal(verifyPeer(compile({ verify_certificate_spki: [spki] }), peer), undefined);
    // a hash or an SPKI pin suffices
    assert.equal(
      verifyPeer(
        compile({ verify_certificate_hash: ["00".repeat(32)], verify_certificate_spki: [spki] }),
        peer,
      ),
      undefined,
    );
  });

  await t.step("a revoked certificate fails the chain check", async () => {
    const crl = await Deno.readTextFile(await makeCrl(pki, [a.cert]));
    assert.equal(verifyPeer(compile({ trusted_ca: { filename: pki.caPath } }, false, crl), peer), "error");
    const clean = await Deno.readTextFile(await makeCrl(pki, []));
    assert.equal(
      verifyPeer(compile({ trusted_ca: { filename: pki.caPath } }, false, clean), peer),
      undefined,
    );
  });

  await t.step("malformed pins and a CRL without a trusted CA are config errors (Envoy's messages)", () => {
    const bad = validationContext.safeParse({
      verify_certificate_hash: ["abc"],
      verify_certificate_spki: ["abc"],
    });
    assert.ok(!bad.success);
    assert.deepEqual(bad.error.issues.map((i) => i.message), [
      "Invalid hex-encoded SHA-256 abc",
      "Invalid base64-encoded SHA-256 abc",
    ]);
    const crl = validationContext.safeParse({ crl: { filename: "/x.crl" } });
    assert.ok(!crl.success);
    assert.equal(crl.error.issues[0].message, "Failed to load CRL from /x.crl without trusted CA");
  });
});

import assert from "node:assert/strict";
import { makeCrl, makePki } from "../../tests/tls_certs.ts";
import { loadTlsRuntime, tlsCrypto } from "./cert_store.ts";
import { certIds, checkRevocation, crlSignedBy, parsePemCrls } from "./crl.ts";

function der(pem: string): Uint8Array {
  return new Uint8Array(new (tlsCrypto().X509Certificate)(pem).raw);
}

Deno.test("revocation lists made by openssl ca", async (t) => {
  await loadTlsRuntime();
  await using pki = await makePki();
  await using other = await makePki();
  const good = await pki.leaf("good", "good", ["DNS:good"], { clientAuth: true });
  const bad = await pki.leaf("bad", "bad", ["DNS:bad"], { clientAuth: true });
  const crlPath = await makeCrl(pki, [bad.cert]);
  const [crl] = parsePemCrls(await Deno.readTextFile(crlPath));
  const ca = der(pki.caPem);
  const goodDer = der(await Deno.readTextFile(good.cert));
  const badDer = der(await Deno.readTextFile(bad.cert));
  const now = Date.now();

  await t.step(
    "parses issuer, dates and revoked serials; the signature verifies with the CA only",
    async () => {
      assert.equal(crl.issuer, certIds(ca).subject);
      assert.ok(crl.thisUpdate <= now && crl.nextUpdate! > now);
      assert.deepEqual([...crl.revoked], [
        (await pki.serialOf(bad.cert)).toLowerCase().replace(/^(00)+/, ""),
      ]);
      assert.ok(crlSignedBy(crl, ca));
      assert.ok(!crlSignedBy(crl, der(other.caPem)));
    },
  );

  await t.step("leaf and full-chain checks (the root is covered by its own CRL)", () => {
    assert.equal(checkRevocation([goodDer, ca], [crl], false, now), undefined);
    assert.equal(checkRevocation([badDer, ca], [crl], false, now), "certificate revoked");
    assert.equal(checkRevocation([badDer, ca], [crl], true, now), "certificate revoked");
    // no CRL from the issuer: Envoy (BoringSSL's CRL_CHECK) fails the verification
    assert.equal(checkRevocation([goodDer, ca], [], true, now), "unable to get certificate CRL");
  });

  await t.step("an expired CRL fails every check", async () => {
    const old = await makeCrl(pki, [], { lastUpdate: "200101000000Z", nextUpdate: "200102000000Z" });
    const [expired] = parsePemCrls(await Deno.readTextFile(old));
    assert.equal(checkRevocation([goodDer, ca], [expired], true, now), "CRL has expired");
  });

  await t.step("a CRL signed by another CA is not used", async () => {
    const foreign = parsePemCrls(await Deno.readTextFile(await makeCrl(other, [])));
    assert.equal(checkRevocation([goodDer, ca], foreign, true, now), "unable to get certificate CRL");
  });
});

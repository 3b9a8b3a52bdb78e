import assert from "node:assert/strict";
import {
  type CertifiedKey,
  CertWatcher,
  loadTlsRuntime,
  selectCertificate,
  validateCertifiedKey,
} from "./cert_store.ts";

async function selfSigned(dir: string, name: string, san: string): Promise<{ cert: string; key: string }> {
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.crt`,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-addext",
      `subjectAltName=${san}`,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(out.code, 0);
  return { cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key` };
}

Deno.test("cert store", async (t) => {
  await loadTlsRuntime();
  const dir = await Deno.makeTempDir();
  const a = await selfSigned(dir, "a", "DNS:a.example.com,DNS:*.w.example.com");
  const b = await selfSigned(dir, "b", "DNS:b.example.com");

  await t.step("a pair is validated and its DNS names listed", () => {
    const k = validateCertifiedKey(Deno.readTextFileSync(a.cert), Deno.readTextFileSync(a.key));
    assert.deepEqual(k.names, ["a.example.com", "*.w.example.com"]);
    assert.throws(
      () => validateCertifiedKey(Deno.readTextFileSync(a.cert), Deno.readTextFileSync(b.key)),
      /Private key does not match the certificate/,
    );
    assert.throws(
      () => validateCertifiedKey("nope", Deno.readTextFileSync(a.key)),
      /Invalid certificate chain/,
    );
  });

  await t.step("certificates are picked by exact name, then wildcard, else the first", () => {
    const certs: CertifiedKey[] = [
      { cert: "B", key: "", names: ["b.example.com"] },
      { cert: "A", key: "", names: ["a.example.com", "*.w.example.com"] },
    ];
    assert.equal(selectCertificate(certs, "a.example.com").cert, "A");
    assert.equal(selectCertificate(certs, "x.w.example.com").cert, "A");
    assert.equal(selectCertificate(certs, "zzz").cert, "B");
    assert.equal(selectCertificate(certs, "").cert, "B");
  });

  await t.step("a watcher reloads changed files and keeps the old pair when the new one is bad", async () => {
    const seen: string[] = [];
    const w = new CertWatcher(
      [{ certificate_chain: { filename: a.cert }, private_key: { filename: a.key } }],
      { intervalMs: 60_000, onChange: (c) => seen.push(c[0].cert) },
    );
    try {
      const first = w.current[0].cert;
      assert.equal(w.reloadIfChanged(), false);
      await selfSigned(dir, "a", "DNS:a.example.com");
      assert.equal(w.reloadIfChanged(), true);
      assert.notEqual(w.current[0].cert, first);
      assert.equal(seen.length, 1);
      const good = w.current[0].cert;
      await Deno.writeTextFile(a.key, "broken");
      assert.equal(w.reloadIfChanged(), false);
      assert.equal(w.current[0].cert, good);
      assert.equal(seen.length, 1);
    } finally {
      w.close();
    }
  });

  await Deno.remove(dir, { recursive: true });
});

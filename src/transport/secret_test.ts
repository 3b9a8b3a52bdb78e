import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import { makePki, sClient } from "../../tests/tls_certs.ts";
import { loadTlsRuntime } from "./cert_store.ts";
import { resolveSecret, SecretRegistry, secretSchema } from "./secret.ts";
import { downstreamTlsContext, upstreamTlsContext } from "./tls_config.ts";
import { DownstreamTls } from "./tls_downstream.ts";

const sds = { path: "/tmp/nowhere.yaml" };

Deno.test("TLS contexts accept SDS secret configs, Envoy's oneofs hold", () => {
  const down = downstreamTlsContext.safeParse({
    common_tls_context: { tls_certificate_sds_secret_configs: [{ name: "c", sds_config: sds }] },
  });
  assert.ok(down.success, JSON.stringify(down.error?.issues));
  const both = downstreamTlsContext.safeParse({
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: "c" }],
      tls_certificates: [{ certificate_chain: { inline_string: "x" }, private_key: { inline_string: "y" } }],
    },
  });
  assert.ok(!both.success);
  assert.match(
    both.error.issues[0].message,
    /Only one of tls_certificates and tls_certificate_sds_secret_configs/,
  );
  const up = upstreamTlsContext.safeParse({
    common_tls_context: { validation_context_sds_secret_config: { name: "ca", sds_config: sds } },
  });
  assert.ok(up.success, JSON.stringify(up.error?.issues));
  const upBoth = upstreamTlsContext.safeParse({
    common_tls_context: {
      validation_context: {},
      validation_context_sds_secret_config: { name: "ca" },
    },
  });
  assert.ok(!upBoth.success);
  const bad = secretSchema.safeParse({ name: "s" });
  assert.ok(!bad.success);
  assert.match(bad.error.issues[0].message, /Exactly one of tls_certificate, validation_context/);
});

Deno.test("SecretRegistry: waiters, watchers, unchanged values, static secrets", async () => {
  await loadTlsRuntime();
  await using pki = await makePki();
  const a = await pki.leaf("a", "a.test", ["DNS:a.test"]);
  const b = await pki.leaf("b", "b.test", ["DNS:b.test"]);
  const secret = (name: string, leaf: { cert: string; key: string }, key = leaf.key) =>
    resolveSecret(secretSchema.parse({
      name,
      tls_certificate: { certificate_chain: { filename: leaf.cert }, private_key: { filename: key } },
    }));
  assert.throws(() => secret("x", a, b.key), /tls_certificate: Private key does not match the certificate/);
  const r = new SecretRegistry();
  let ready = false;
  const waiting = r.whenReady("s").then(() => ready = true);
  const seen: string[] = [];
  r.watch("s", (v) => seen.push(v.kind === "tls_certificate" ? v.certified.names[0] : "?"));
  assert.equal(r.get("s"), undefined);
  assert.equal(r.set("s", secret("s", a), "1"), true);
  await waiting;
  assert.ok(ready);
  assert.equal(r.set("s", secret("s", a), "2"), false, "the same secret again changes nothing");
  assert.equal(r.set("s", secret("s", b), "3"), true);
  assert.deepEqual(seen, ["a.test", "b.test"]);
  assert.equal(r.version("s"), "3");
  r.set("st", secret("st", a), "", true);
  assert.throws(() => r.set("st", secret("st", b), "1"), /static and cannot be changed by SDS/);
});

Deno.test("DownstreamTls from SDS: handshakes wait for the secret, then rotate", async () => {
  await loadTlsRuntime();
  await using pki = await makePki();
  const a = await pki.leaf("a", "a.test", ["DNS:sds.test"]);
  const b = await pki.leaf("b", "b.test", ["DNS:sds.test"]);
  const r = new SecretRegistry();
  const config = downstreamTlsContext.parse({
    common_tls_context: { tls_certificate_sds_secret_configs: [{ name: "cert", sds_config: sds }] },
  });
  assert.throws(
    () =>
      new DownstreamTls(
        downstreamTlsContext.parse({
          common_tls_context: { tls_certificate_sds_secret_configs: [{ name: "nope" }] },
        }),
        { secrets: r },
      ),
    /Unknown static secret: nope/,
  );
  const tls = new DownstreamTls(config, { secrets: r });
  let rotations = 0;
  tls.onRotate(() => rotations++);
  const pending = tls.whenReady();
  assert.ok(pending !== undefined, "warming until the secret arrives");
  assert.equal(tls.certificates.length, 0);
  // a listener bound before the secret arrived holds the handshake
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls.listenOptions() });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = (async () => {
    const c = await listener.accept();
    await c.handshake().catch(() => {});
    return c;
  })();
  const client = sClient(port, { servername: "sds.test", caPath: pki.caPath });
  await new Promise((res) => setTimeout(res, 200));
  const mk = (leaf: { cert: string; key: string }) =>
    resolveSecret(secretSchema.parse({
      name: "cert",
      tls_certificate: { certificate_chain: { filename: leaf.cert }, private_key: { filename: leaf.key } },
    }));
  r.set("cert", mk(a), "1");
  await pending;
  assert.equal(tls.whenReady(), undefined);
  assert.equal((await client).cn, "a.test");
  (await accepted).close();
  listener.close();
  assert.equal(rotations, 1, "the first arrival rebinds a listener bound while warming");
  r.set("cert", mk(b), "2");
  assert.equal(rotations, 2);
  assert.equal(tls.servedCertificate("sds.test").names[0], "sds.test");
  assert.match(tls.certificates[0].cert, /BEGIN CERTIFICATE/);
  assert.equal(tls.certificates[0].cert, await Deno.readTextFile(b.cert));
  tls.close();
  r.set("cert", mk(a), "3");
  assert.equal(rotations, 2, "a closed context no longer watches");
});

Deno.test("DownstreamTls from SDS: the initial_fetch_timeout ends warming; handshakes then fail", async () => {
  await loadTlsRuntime();
  await using pki = await makePki();
  const r = new SecretRegistry();
  const config = downstreamTlsContext.parse({
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{
        name: "never",
        sds_config: { ...sds, initial_fetch_timeout: "0.05s" },
      }],
    },
  });
  const tls = new DownstreamTls(config, { secrets: r });
  const pending = tls.whenReady();
  assert.ok(pending !== undefined, "warming until the secret arrives or times out");
  await pending;
  assert.equal(tls.whenReady(), undefined, "no longer warming");
  assert.ok(r.isSettled("never"));
  assert.throws(() => tls.servedCertificate("sds.test"), /Secrets not yet received: never/);
  // a later context naming the same secret does not wait again
  const again = new DownstreamTls(config, { secrets: r });
  assert.equal(again.whenReady(), undefined);
  // a listener bound meanwhile resets the handshake (no certificate), as Envoy
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls.listenOptions() });
  const accepted = (async () => {
    const c = await listener.accept();
    await c.handshake().catch(() => {});
    c.close();
  })();
  const hs = await sClient((listener.addr as Deno.NetAddr).port, {
    servername: "sds.test",
    caPath: pki.caPath,
  });
  assert.equal(hs.cn, "", "no certificate served");
  assert.equal(hs.serial, "");
  await accepted;
  listener.close();
  tls.close();
  again.close();
});

/** tcp_proxy with a raw echo origin: bytes both ways, half-close, connect failure (UF), idle timeout. */
import assert from "node:assert/strict";
import {
  behaviors,
  bootstrapYaml,
  rawExchange,
  refusedPort,
  startProxy,
  startRawOrigin,
  staticCluster,
  tcpListener,
} from "./helpers.ts";

Deno.test("tcp_proxy", async (t) => {
  await using echo = startRawOrigin(behaviors.echo());
  await using proxy = await startProxy(bootstrapYaml(
    [
      tcpListener("echo", "echo"),
      tcpListener("refused", "refused"),
    ],
    [staticCluster("echo", [echo.port]), staticCluster("refused", [refusedPort()])],
  ));

  await t.step("bytes echo through; half-close delivers every echoed byte, then EOF", async () => {
    const payload = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    const r = await rawExchange(proxy.port("echo"), payload, { halfClose: true, timeoutMs: 5000 });
    assert.ok(r.closed, "EOF after the origin half-closed");
    assert.equal(r.text.length, payload.length);
    assert.equal(r.text, payload);
    assert.equal(proxy.stat("tcp.echo.downstream_cx_total"), 1);
    assert.equal(proxy.stat("tcp.echo.downstream_cx_rx_bytes_total"), payload.length);
    assert.equal(proxy.stat("tcp.echo.downstream_cx_tx_bytes_total"), payload.length);
    assert.equal(proxy.stat("cluster.echo.upstream_cx_total"), 1);
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "-");
    assert.equal(log.upstreamHost, `127.0.0.1:${echo.port}`);
    assert.equal(log.cluster, "echo");
    assert.equal(log.bytesReceived, String(payload.length));
    assert.equal(log.bytesSent, String(payload.length));
  });

  await t.step("small and bulk messages alternate on one connection, every byte in order", async () => {
    // each direction reads small messages into a 512-byte slot and bulk into a 32 KiB buffer, switching both
    // ways; the bytes are non-periodic so a chunk delivered twice, lost or out of order shows
    let seed = 7;
    const bytes = (n: number) =>
      Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("echo") });
    try {
      for (const size of [5, 511, 512, 513, 200_000, 40, 3000, 1, 70_000, 100]) {
        const msg = bytes(size);
        await conn.write(msg);
        const got = new Uint8Array(size);
        let have = 0;
        while (have < size) {
          const n = await conn.read(got.subarray(have));
          assert.ok(n !== null, `EOF after ${have} of ${size} bytes`);
          have += n;
        }
        assert.deepEqual(got, msg, `a ${size}-byte message came back intact`);
      }
    } finally {
      conn.close();
    }
  });

  await t.step("a refusing host closes the downstream connection with UF", async () => {
    const t0 = performance.now();
    const r = await rawExchange(proxy.port("refused"), "hello", { timeoutMs: 3000 });
    assert.ok(r.closed, "closed by the proxy");
    assert.equal(r.text, "");
    assert.ok(performance.now() - t0 < 2000);
    const log = (await proxy.log(3)).find((l) => l.cluster === "refused")!;
    assert.equal(log.flags, "UF");
    assert.equal(log.cluster, "refused");
    assert.equal(proxy.stat("cluster.refused.upstream_cx_connect_fail"), 1);
    assert.equal(proxy.stat("tcp.refused.downstream_cx_total"), 1);
  });
});

Deno.test("tcp_proxy: idle_timeout", async (t) => {
  await using echo = startRawOrigin(behaviors.echo());
  await using proxy = await startProxy(bootstrapYaml(
    [tcpListener("idle", "echo", { idle_timeout: "0.3s" })],
    [staticCluster("echo", [echo.port])],
  ));

  await t.step("idle_timeout 0.3s closes an idle session", async () => {
    const t0 = performance.now();
    const r = await rawExchange(proxy.port("idle"), "ping", { timeoutMs: 3000 });
    const took = performance.now() - t0;
    assert.ok(r.closed, "closed by the proxy before the client gave up");
    assert.equal(r.text, "ping");
    assert.ok(took >= 250 && took < 1500, `took ${took}ms`);
    assert.equal(proxy.stat("tcp.idle.idle_timeout"), 1);
    const [log] = await proxy.log(1);
    assert.equal(log.details, "idle_timeout");
  });

  await t.step("an active session outlives the idle timeout", async () => {
    const r = await rawExchange(proxy.port("idle"), ["a", "b", "c", "d", "e"], {
      gapMs: 150,
      halfClose: true,
      timeoutMs: 3000,
    });
    assert.equal(r.text, "abcde");
    assert.ok(r.closed);
    assert.equal(proxy.stat("tcp.idle.idle_timeout"), 1);
  });
});

/** WebSocket upgrades through upgrade_configs, with Deno's WebSocket client and a Deno.serve origin. */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  parseResponse,
  rawExchange,
  readHead,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
  writeAll,
} from "./helpers.ts";

const UPGRADE_HEAD = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

Deno.test("http: websocket upgrade", async (t) => {
  const serverSockets: Promise<void>[] = [];
  await using origin = startOrigin("ws", (req) => {
    if (req.headers.get("upgrade") !== "websocket") return new Response("not ws", { status: 400 });
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => socket.send("welcome");
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    serverSockets.push(new Promise((r) => socket.onclose = () => r()));
    return response;
  });
  // A raw origin: answers 101 plus bytes, echoes one read, then closes.
  await using raw = startRawOrigin(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nFIRST;",
    );
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    if (n) await writeAll(conn, `ECHO:${new TextDecoder().decode(buf.subarray(0, n))}`);
  });
  const route = [
    { match: { prefix: "/raw" }, route: { cluster: "raw" } },
    { match: { prefix: "/" }, route: { cluster: "ws" } },
  ];
  await using proxy = await startProxy(bootstrapYaml(
    [
      httpListener({
        name: "on",
        statPrefix: "on",
        virtualHosts: [anyHost(route)],
        hcm: { upgrade_configs: [{ upgrade_type: "websocket" }] },
      }),
      httpListener({ name: "off", statPrefix: "off", virtualHosts: [anyHost(route)] }),
    ],
    [staticCluster("ws", [origin.port]), staticCluster("raw", [raw.port])],
  ));

  await t.step("raw tunnel: bytes after the 101 flow both ways", async () => {
    const r = await rawExchange(proxy.port("on"), [UPGRADE_HEAD.replace("/ws", "/raw"), "CLIENT"], {
      gapMs: 100,
      timeoutMs: 2000,
    });
    const res = parseResponse(r.text);
    assert.equal(res.status, 101);
    assert.equal(res.headers.get("upgrade"), "websocket");
    assert.equal(res.body, "FIRST;ECHO:CLIENT");
    assert.ok(r.closed, "the origin's close reaches the client");
    const log = (await proxy.log(1)).at(-1)!;
    assert.equal(log.code, "101");
    assert.equal(log.bytesSent, "17");
    assert.equal(log.bytesReceived, "6");
  });

  await t.step("messages echo both ways", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port("on")}/ws`);
    const got: string[] = [];
    const closed = new Promise<void>((r) => ws.onclose = () => r());
    const allIn = new Promise<void>((resolve, reject) => {
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 1) {
          ws.send("one");
          ws.send("x".repeat(100_000));
        }
        if (got.length === 3) resolve();
      };
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(got)}`)), 3000);
    });
    try {
      await Promise.race([allIn, timeout]);
    } finally {
      clearTimeout(timer);
      ws.close();
      await closed;
      await Promise.all(serverSockets);
    }
    assert.equal(got[0], "welcome");
    assert.equal(got[1], "echo:one");
    assert.equal(got[2], `echo:${"x".repeat(100_000)}`);
    assert.equal(proxy.stat("http.on.downstream_cx_upgrades_total"), 2);
    const log = (await proxy.log(2)).at(-1)!;
    assert.equal(log.code, "101");
    assert.equal(log.cluster, "ws");
    assert.equal(proxy.stat("http.on.downstream_cx_upgrades_active"), 0);
  });

  await t.step("without upgrade_configs the upgrade gets 403", async () => {
    const hits = origin.requests.length;
    const r = await rawExchange(proxy.port("off"), UPGRADE_HEAD, { timeoutMs: 2000 });
    assert.equal(parseResponse(r.text).status, 403);
    assert.equal(origin.requests.length, hits);
    const log = (await proxy.log(3)).at(-1)!;
    assert.equal(log.code, "403");
    assert.equal(proxy.stat("http.off.downstream_rq_4xx"), 1);
  });
});

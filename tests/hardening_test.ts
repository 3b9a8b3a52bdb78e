/** HTTP/1.1 hardening over raw sockets: limits, smuggling vectors, malformed heads, timeouts, paths. */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  parseResponse,
  rawExchange,
  sleep,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
} from "./helpers.ts";

const route = [
  { match: { prefix: "/chunks" }, route: { cluster: "raw" } },
  { match: { prefix: "/" }, route: { cluster: "web" } },
];

Deno.test("http: hardening against malformed and hostile requests", async (t) => {
  await using origin = startOrigin("web");
  // A raw origin that reads a request to EOF and records what it got after the head.
  const rawSeen: string[] = [];
  await using raw = startRawOrigin(async (conn) => {
    const buf = new Uint8Array(65536);
    let got = "";
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    rawSeen.push(got);
  });
  await using proxy = await startProxy(bootstrapYaml(
    [
      httpListener({ name: "main", statPrefix: "main", virtualHosts: [anyHost(route)] }),
      httpListener({
        name: "slow",
        statPrefix: "slow",
        virtualHosts: [anyHost(route)],
        hcm: { request_headers_timeout: "0.3s" },
      }),
      httpListener({
        name: "norm",
        statPrefix: "norm",
        virtualHosts: [anyHost(route)],
        hcm: { normalize_path: true, merge_slashes: true },
      }),
      httpListener({
        name: "reject",
        statPrefix: "reject",
        virtualHosts: [anyHost(route)],
        hcm: { path_with_escaped_slashes_action: "REJECT_REQUEST" },
      }),
      httpListener({
        name: "redirect",
        statPrefix: "redirect",
        virtualHosts: [anyHost(route)],
        hcm: { path_with_escaped_slashes_action: "UNESCAPE_AND_REDIRECT" },
      }),
    ],
    [staticCluster("web", [origin.port]), staticCluster("raw", [raw.port])],
  ));
  let logged = 0;
  /** Sends raw bytes to `listener`; expects `status`, the connection closed, DPE in the log, no origin hit. */
  const expectReject = async (head: string, status: number, listener = "main") => {
    const hits = origin.requests.length;
    const r = await rawExchange(proxy.port(listener), head, { timeoutMs: 3000 });
    const res = parseResponse(r.text);
    assert.equal(res.status, status, `response was: ${JSON.stringify(r.text.slice(0, 200))}`);
    assert.ok(r.closed, "the connection is closed after the error");
    assert.equal(origin.requests.length, hits, "nothing reached the origin");
    const log = (await proxy.log(++logged)).at(-1)!;
    assert.equal(log.code, String(status));
    assert.equal(log.flags, "DPE");
    return res;
  };

  await t.step("more than 60 KiB of headers: 431", async () => {
    await expectReject(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(61 * 1024)}\r\n\r\n`, 431);
    assert.equal(proxy.stat("http.main.downstream_rq_too_large"), 1);
  });

  await t.step("101 headers: 431", async () => {
    let h = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (let i = 0; i < 100; i++) h += `X-H${i}: v\r\n`;
    await expectReject(h + "\r\n", 431);
  });

  await t.step("100 headers exactly pass", async () => {
    let h = "GET /hundred HTTP/1.1\r\nHost: a\r\nConnection: close\r\n";
    for (let i = 0; i < 98; i++) h += `X-H${i}: v\r\n`;
    const r = await rawExchange(proxy.port("main"), h + "\r\n");
    assert.equal(parseResponse(r.text).status, 200);
    logged++;
  });

  await t.step("Content-Length with Transfer-Encoding: 400", async () => {
    await expectReject(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    );
  });

  await t.step("two different Content-Length values: 400", async () => {
    await expectReject(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      400,
    );
  });

  await t.step("obs-fold: 400", async () => {
    await expectReject("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  folded\r\n\r\n", 400);
  });

  await t.step("bare CR in a header value: 400", async () => {
    await expectReject("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400);
  });

  await t.step("NUL in a header value: 400", async () => {
    await expectReject("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400);
  });

  await t.step("bad chunk size: 400, and the upstream request is reset", async () => {
    const r = await rawExchange(
      proxy.port("main"),
      "POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      { timeoutMs: 3000 },
    );
    assert.equal(parseResponse(r.text).status, 400, r.text);
    assert.ok(r.closed);
    const log = (await proxy.log(++logged)).at(-1)!;
    assert.equal(log.code, "400");
    assert.equal(log.flags, "DPE");
    // the head may already have been forwarded; then the upstream connection must be closed (reset)
    for (let i = 0; i < 100 && raw.accepted > rawSeen.length; i++) await sleep(10);
    assert.equal(rawSeen.length, raw.accepted, "the upstream connection was closed after the 400");
    assert.ok(rawSeen.every((got) => !got.includes("hello")), "no body bytes forwarded");
    assert.equal(proxy.stat("cluster.raw.upstream_rq_active"), 0);
    assert.equal(proxy.stat("cluster.raw.upstream_cx_active"), 0);
  });

  await t.step("HTTP/1.1 without Host: 400", async () => {
    await expectReject("GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400);
  });

  await t.step("absolute-form target wins over Host", async () => {
    const r = await rawExchange(
      proxy.port("main"),
      "GET http://absolute.example/abs?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    );
    assert.equal(parseResponse(r.text).status, 200);
    const seen = origin.requests.at(-1)!;
    assert.equal(seen.headers.get("host"), "absolute.example");
    assert.equal(seen.path, "/abs?q=1");
    logged++;
  });

  await t.step("request_headers_timeout 0.3s: half a head gets 408, then close", async () => {
    const t0 = performance.now();
    const r = await rawExchange(proxy.port("slow"), "GET / HTTP/1.1\r\nHost: a\r\n", { timeoutMs: 3000 });
    const took = performance.now() - t0;
    assert.equal(parseResponse(r.text).status, 408, r.text);
    assert.ok(r.closed);
    assert.ok(took >= 250 && took < 2000, `took ${took}ms`);
    assert.equal(proxy.stat("http.slow.downstream_rq_header_timeout"), 1);
    const log = (await proxy.log(++logged)).at(-1)!;
    assert.equal(log.code, "408");
  });

  await t.step(
    "request_headers_timeout does not cut a keep-alive connection waiting between requests",
    async () => {
      const r = await rawExchange(proxy.port("slow"), [
        "GET /one HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      ], { gapMs: 500, timeoutMs: 3000 });
      assert.equal(r.text.match(/HTTP\/1\.1 200/g)?.length, 2, r.text);
      logged += 2;
    },
  );

  await t.step("normalize_path and merge_slashes change the path the origin sees", async () => {
    const r = await rawExchange(
      proxy.port("norm"),
      "GET /a//b/./c/../d%7E?x=//y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert.equal(parseResponse(r.text).status, 200);
    assert.equal(origin.requests.at(-1)!.path, "/a/b/d~?x=//y");
    logged++;
  });

  await t.step("escaped slashes REJECT_REQUEST: 400", async () => {
    await expectReject("GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "reject");
  });

  await t.step("escaped slashes UNESCAPE_AND_REDIRECT: 307 to the unescaped path", async () => {
    const r = await rawExchange(
      proxy.port("redirect"),
      "GET /a%2Fb?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    const res = parseResponse(r.text);
    assert.equal(res.status, 307);
    assert.equal(res.headers.get("location"), "/a/b?q=1");
    logged++;
    await sleep(0);
  });
});

/** Request and response bodies: chunked both ways, 100-continue, a 1 GiB upload with bounded memory. */
import assert from "node:assert/strict";
import {
  anyHost,
  bash,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  rawExchange,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

const enc = new TextEncoder();

Deno.test("http: bodies", async (t) => {
  // The origin echoes the body length; /stream answers with a chunked ReadableStream.
  await using origin = startOrigin("body", (req, seen) => {
    if (new URL(req.url).pathname === "/stream") {
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (i === 5) return c.close();
          await new Promise((r) => setTimeout(r, 5));
          c.enqueue(enc.encode(`part${i++};`));
        },
      });
      return new Response(body);
    }
    return new Response(`got ${seen.bodyBytes}:${seen.body.slice(0, 32)}`, {
      headers: {
        "x-te": req.headers.get("transfer-encoding") ?? "",
        "x-cl": req.headers.get("content-length") ?? "",
      },
    });
  });
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "body", timeout: "60s" } }])],
    })],
    [staticCluster("body", [origin.port])],
  ));

  await t.step("chunked request body reaches the origin chunked", async () => {
    const r = await curl([
      "-i",
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      "hello chunked world",
      proxy.url("/up"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.body, "got 19:hello chunked world");
    assert.equal(res.headers.get("x-te"), "chunked");
    assert.equal(origin.requests.at(-1)!.method, "POST");
  });

  await t.step("content-length request body keeps its length", async () => {
    const r = await curl(["-i", "--data-binary", "abc", proxy.url("/cl")]);
    const res = parseResponse(r.stdout);
    assert.equal(res.body, "got 3:abc");
    assert.equal(res.headers.get("x-cl"), "3");
  });

  await t.step("streamed response without content-length arrives chunked and whole", async () => {
    const raw = await rawExchange(
      proxy.port(),
      "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      {
        timeoutMs: 3000,
      },
    );
    assert.ok(raw.closed, "server closes after Connection: close");
    const res = parseResponse(raw.text);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("transfer-encoding"), "chunked");
    assert.equal(res.headers.get("content-length"), undefined);
    const decoded = res.body.split("\r\n").filter((_, i) => i % 2 === 1).join("");
    assert.equal(decoded, "part0;part1;part2;part3;part4;");
  });

  await t.step("100-continue: curl's Expect gets 100 and the body passes", async () => {
    const r = await curl([
      "-v",
      "-i",
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      "x".repeat(2000),
      proxy.url("/expect"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 100 Continue\r\n/);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.match(res.body, /^got 2000:/);
  });

  await t.step("1 GiB chunked upload: every byte arrives, memory stays bounded", async () => {
    const rssBefore = Deno.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 50);
    const r = await bash(
      `head -c 1G /dev/zero | curl -s --max-time 120 -T - -w '\\n%{http_code}' ${proxy.url("/big")}`,
    );
    clearInterval(sampler);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `got ${1 << 30}:${"\0".repeat(32)}\n200`);
    const seen = origin.requests.at(-1)!;
    assert.equal(seen.bodyBytes, 1 << 30);
    assert.equal(seen.headers.get("transfer-encoding"), "chunked");
    const grownMb = (peak - rssBefore) / (1 << 20);
    assert.ok(grownMb < 200, `RSS grew by ${grownMb.toFixed(0)} MB`);
    const logs = await proxy.log(5);
    const big = logs.find((l) => l.path === "/big")!;
    assert.equal(big.code, "200");
    assert.equal(big.bytesReceived, String(1 << 30));
  });
});

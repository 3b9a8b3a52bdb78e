import assert from "node:assert/strict";
import type * as Api from "./index.d.ts";
import * as pkg from "./index.js";
// the JS modules themselves (// @ts-check): importing them here makes `deno test` type-check their JSDoc
import * as clientJs from "./client.js";
import * as contextJs from "./context.js";
import * as outcomeJs from "./outcome.js";

// index.d.ts (the published types) and the JSDoc-typed implementation agree: each assignment is checked
const _types: {
  call: typeof Api.call;
  withIncoming: typeof Api.withIncoming;
  nuncioContext: typeof Api.nuncioContext;
  currentHeaders: typeof Api.currentHeaders;
  requestId: typeof Api.requestId;
  egressAddress: typeof Api.egressAddress;
  parseEgress: typeof Api.parseEgress;
  proxyOutcome: typeof Api.proxyOutcome;
  expectOk: typeof Api.expectOk;
  NuncioClient: typeof Api.NuncioClient;
} = {
  call: clientJs.call,
  withIncoming: contextJs.withIncoming,
  nuncioContext: contextJs.nuncioContext,
  currentHeaders: contextJs.currentHeaders,
  requestId: contextJs.requestId,
  egressAddress: clientJs.egressAddress,
  parseEgress: clientJs.parseEgress,
  proxyOutcome: outcomeJs.proxyOutcome,
  expectOk: outcomeJs.expectOk,
  NuncioClient: clientJs.NuncioClient,
};

const TRACE = {
  "x-request-id": "11111111-2222-4333-8444-555555555555",
  "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
  "x-b3-spanid": "e457b5a2e4d86bd1",
  "x-b3-sampled": "1",
  "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
  "tracestate": "vendor=abc",
  "x-client-trace-id": "client-7",
  "x-envoy-force-trace": "true",
};

Deno.test("client: withIncoming keeps the trace headers across awaits and timers, only inside", async () => {
  const req = new Request("http://svc/", {
    headers: { ...TRACE, "x-other": "no", authorization: "secret" },
  });
  assert.deepEqual(pkg.currentHeaders(), []);
  await pkg.withIncoming(req, async () => {
    await new Promise((r) => setTimeout(r, 1));
    await Promise.resolve();
    const got = Object.fromEntries(pkg.currentHeaders());
    assert.deepEqual(got, TRACE);
    assert.equal(pkg.requestId(), TRACE["x-request-id"]);
    // a nested request replaces the context, and the outer one comes back after it
    await pkg.withIncoming({ "x-request-id": "inner" }, async () => {
      await Promise.resolve();
      assert.equal(pkg.requestId(), "inner");
    });
    assert.equal(pkg.requestId(), TRACE["x-request-id"]);
  });
  assert.equal(pkg.requestId(), undefined);
});

Deno.test("client: incoming headers from a Node IncomingMessage, pairs; a missing request id is made once", () => {
  const node = {
    headers: {
      "x-request-id": "n1",
      "x-b3-traceid": "t",
      b3: "t-s-1",
      "x-ot-span-context": "ot",
    },
  };
  assert.deepEqual(contextJs.pickPropagated(node), [
    ["x-request-id", "n1"],
    ["x-b3-traceid", "t"],
    ["b3", "t-s-1"],
    ["x-ot-span-context", "ot"],
  ]);
  assert.deepEqual(
    contextJs.pickPropagated([["Traceparent", "00-a-b-01"], [
      "X-Request-Id",
      "p1",
    ]]),
    [
      ["x-request-id", "p1"],
      ["traceparent", "00-a-b-01"],
    ],
  );
  const made = contextJs.pickPropagated(new Headers());
  assert.equal(made.length, 1);
  assert.match(made[0][1], /^[0-9a-f-]{36}$/);
  assert.deepEqual(
    contextJs.pickPropagated(new Headers(), { generateRequestId: false }),
    [],
  );
  pkg.withIncoming(new Headers(), () => {
    const id = pkg.requestId();
    assert.ok(id);
    assert.equal(pkg.requestId(), id, "one id for the whole request");
  });
});

Deno.test("client: policy headers: defaults by method, overrides, null leaves the route's", () => {
  const h = (method: string, policy: Api.CallPolicy, extra?: HeadersInit) =>
    Object.fromEntries(
      clientJs.requestHeaders("users", method, policy, extra, [[
        "x-request-id",
        "r",
      ]]),
    );
  assert.deepEqual(h("GET", {}), {
    host: "users",
    "x-request-id": "r",
    "x-envoy-upstream-rq-timeout-ms": "15000",
    "x-envoy-max-retries": "2",
    "x-envoy-retry-on": "5xx,connect-failure,refused-stream",
  });
  // not idempotent: no retries unless asked, so the route's retry policy cannot repeat a POST either
  assert.deepEqual(h("POST", {}), {
    host: "users",
    "x-request-id": "r",
    "x-envoy-upstream-rq-timeout-ms": "15000",
    "x-envoy-max-retries": "0",
  });
  assert.deepEqual(
    h("POST", {
      retries: 1,
      retryOn: "connect-failure",
      timeoutMs: 250,
      perTryTimeoutMs: 100,
    }),
    {
      host: "users",
      "x-request-id": "r",
      "x-envoy-upstream-rq-timeout-ms": "250",
      "x-envoy-upstream-rq-per-try-timeout-ms": "100",
      "x-envoy-max-retries": "1",
      "x-envoy-retry-on": "connect-failure",
    },
  );
  assert.deepEqual(h("GET", { timeoutMs: null, retries: null }), {
    host: "users",
    "x-request-id": "r",
  });
  // the caller's own headers win over the propagated ones; host is always the service
  assert.deepEqual(
    h("GET", { timeoutMs: null, retries: null }, {
      "x-request-id": "mine",
      host: "x",
    }),
    {
      host: "users",
      "x-request-id": "mine",
    },
  );
  assert.throws(() => h("GET", { timeoutMs: -1 }), /non-negative/);
});

Deno.test("client: egress address from the option, NUNCIO_EGRESS, or 127.0.0.1:9001", () => {
  assert.deepEqual(pkg.parseEgress("127.0.0.1:9001"), {
    host: "127.0.0.1",
    port: 9001,
  });
  assert.deepEqual(pkg.parseEgress("[::1]:15001"), {
    host: "::1",
    port: 15001,
  });
  assert.deepEqual(pkg.parseEgress("9002"), { host: "127.0.0.1", port: 9002 });
  assert.throws(() => pkg.parseEgress("localhost"), /HOST:PORT/);
  assert.throws(() => pkg.parseEgress("a:70000"), /HOST:PORT/);
  const before = Deno.env.get("NUNCIO_EGRESS");
  try {
    Deno.env.delete("NUNCIO_EGRESS");
    assert.deepEqual(pkg.egressAddress(), { host: "127.0.0.1", port: 9001 });
    Deno.env.set("NUNCIO_EGRESS", "127.0.0.2:9100");
    assert.deepEqual(pkg.egressAddress(), { host: "127.0.0.2", port: 9100 });
    assert.deepEqual(pkg.egressAddress("127.0.0.1:9200"), {
      host: "127.0.0.1",
      port: 9200,
    });
    assert.deepEqual(new pkg.NuncioClient().egress, {
      host: "127.0.0.2",
      port: 9100,
    });
  } finally {
    if (before === undefined) Deno.env.delete("NUNCIO_EGRESS");
    else Deno.env.set("NUNCIO_EGRESS", before);
  }
});

/** A local server standing for the egress listener: answers what it saw as JSON. */
function echoServer() {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const u = new URL(req.url);
      if (u.pathname === "/empty") {
        return new Response(null, {
          status: 204,
          headers: { "x-seen": "1" },
        });
      }
      if (u.pathname === "/big") return new Response("x".repeat(1 << 20));
      return Response.json({
        method: req.method,
        path: u.pathname + u.search,
        headers: Object.fromEntries(req.headers),
        body: await req.text(),
      }, {
        headers: { "set-cookie": "a=1", "x-envoy-upstream-service-time": "3" },
      });
    },
  );
}

Deno.test("client: call sends Host: <service>, the policy and the context, answers a Response", async () => {
  await using server = echoServer();
  const client = new pkg.NuncioClient({
    egress: `127.0.0.1:${server.addr.port}`,
    defaults: { timeoutMs: 2000 },
  });
  try {
    const res = await pkg.withIncoming(
      new Request("http://a/", { headers: TRACE }),
      () => client.call("users", "/v1/users?id=7", { headers: { "x-extra": "e" } }),
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("set-cookie"), "a=1");
    const seen = await res.json();
    assert.equal(seen.method, "GET");
    assert.equal(seen.path, "/v1/users?id=7");
    assert.equal(seen.headers.host, "users");
    assert.equal(seen.headers["x-extra"], "e");
    assert.equal(seen.headers["x-envoy-upstream-rq-timeout-ms"], "2000");
    assert.equal(seen.headers["x-envoy-max-retries"], "2");
    for (const [k, v] of Object.entries(TRACE)) {
      assert.equal(seen.headers[k], v, k);
    }

    const posted = await (await client.call("users", "v1/users", {
      json: { name: "ann" },
      retries: 0,
    })).json();
    assert.equal(posted.method, "POST");
    assert.equal(posted.path, "/v1/users");
    assert.equal(posted.body, '{"name":"ann"}');
    assert.equal(posted.headers["content-type"], "application/json");
    assert.equal(
      posted.headers["x-request-id"],
      undefined,
      "no context outside withIncoming",
    );

    const put = await (await client.call("users", "/u", {
      method: "put",
      body: new Uint8Array([104, 105]),
    })).json();
    assert.deepEqual(
      [put.method, put.body, put.headers["x-envoy-max-retries"]],
      ["PUT", "hi", "2"],
    );

    const empty = await client.call("users", "/empty");
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
    assert.equal(empty.headers.get("x-seen"), "1");

    const big = await client.call("users", "/big");
    assert.equal((await big.arrayBuffer()).byteLength, 1 << 20);
    // a body nobody reads can be cancelled
    const dropped = await client.call("users", "/big");
    await dropped.body?.cancel();
  } finally {
    client.close();
  }
});

Deno.test("client: a refused egress rejects; an aborted call rejects with the reason", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  const client = new pkg.NuncioClient({ egress: `127.0.0.1:${port}` });
  try {
    await assert.rejects(client.call("users", "/"), /ECONNREFUSED|refused/i);
    const ac = new AbortController();
    ac.abort(new Error("Gave up"));
    await assert.rejects(
      client.call("users", "/", { signal: ac.signal }),
      /Gave up/,
    );
  } finally {
    client.close();
  }
});

Deno.test("client: proxyOutcome reads the proxy's headers honestly", async () => {
  const o = (status: number, headers: Record<string, string> = {}) =>
    pkg.proxyOutcome(new Response(null, { status, headers }));
  assert.equal(
    o(200, { "x-envoy-upstream-service-time": "4" }).reason,
    undefined,
  );
  assert.equal(
    o(200, { "x-envoy-upstream-service-time": "4" }).upstreamServiceTimeMs,
    4,
  );
  assert.equal(o(503, { "x-envoy-overloaded": "true" }).reason, "overloaded");
  assert.equal(
    o(429, { "x-envoy-ratelimited": "true" }).reason,
    "rate_limited",
  );
  assert.equal(o(504).reason, "timeout");
  assert.equal(o(503).reason, "unavailable");
  assert.equal(o(502).reason, "bad_gateway");
  assert.equal(
    o(503, { "x-envoy-upstream-service-time": "1" }).reason,
    "upstream",
  );
  assert.equal(
    o(404, { "x-envoy-upstream-service-time": "1" }).reason,
    "client",
  );
  assert.equal(o(503, { "x-envoy-attempt-count": "3" }).attempts, 3);
  const err = await pkg.expectOk(
    "users",
    new Response("no healthy upstream", { status: 503 }),
  ).catch((e) => e);
  assert.ok(err instanceof pkg.ProxyError);
  assert.equal(err.outcome.reason, "unavailable");
  assert.match(err.message, /users failed: 503 \(unavailable\)/);
});

Deno.test("client: the same files run under Node 20, imported by package name through `exports`", async () => {
  await using server = echoServer();
  // an app's node_modules with the package in it (a link to this folder, as `npm install <path>` makes)
  const app = await Deno.makeTempDir({ prefix: "nuncio_client_node_" });
  try {
    await Deno.mkdir(`${app}/node_modules/@nuncio`, { recursive: true });
    await Deno.symlink(
      new URL(".", import.meta.url).pathname,
      `${app}/node_modules/@nuncio/client`,
    );
    await Deno.writeTextFile(`${app}/package.json`, '{"type":"module"}');
    await Deno.writeTextFile(
      `${app}/main.js`,
      `
      import { NuncioClient, withIncoming, requestId } from "@nuncio/client";
      import pkgJson from "@nuncio/client/package.json" with { type: "json" };
      const client = new NuncioClient();
      const incoming = { headers: { "x-request-id": "from-node", traceparent: "00-aa-bb-01" } };
      const res = await withIncoming(incoming, async () => {
        await new Promise((r) => setTimeout(r, 1));
        return client.call("orders", "/o", { timeoutMs: 1234 });
      });
      const seen = await res.json();
      client.close();
      console.log(JSON.stringify({ version: process.versions.node, name: pkgJson.name, rid: requestId(), seen }));
    `,
    );
    const out = await new Deno.Command("node", {
      args: ["main.js"],
      cwd: app,
      env: { NUNCIO_EGRESS: `127.0.0.1:${server.addr.port}` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.match(r.version, /^20\./);
    assert.equal(r.name, "@nuncio/client");
    assert.equal(r.rid, undefined);
    assert.equal(r.seen.headers.host, "orders");
    assert.equal(r.seen.headers["x-request-id"], "from-node");
    assert.equal(r.seen.headers.traceparent, "00-aa-bb-01");
    assert.equal(r.seen.headers["x-envoy-upstream-rq-timeout-ms"], "1234");
  } finally {
    await Deno.remove(app, { recursive: true });
  }
});

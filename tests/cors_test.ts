/**
 * The CORS filter end to end (tests/fixtures/cors/edge.yaml): curl as the client for preflights, actual
 * requests, credentials, non-matching origins, route over virtual host, shadow mode and the deprecated `cors`
 * fields; then headless Chromium loading a page from one nuncio listener that fetches from the CORS-protected
 * listener on another port, allowed or blocked by the policy as a browser enforces it.
 */
import assert from "node:assert/strict";
import { curl, type ParsedResponse, parseResponse, type Proxy, startOrigin, startProxy } from "./helpers.ts";
import { launchChromium } from "./fixtures/cors/chromium.ts";

const FIXTURES = new URL("./fixtures/cors/", import.meta.url).pathname;

/** The origin server: echoes nothing, names itself, and sets a header the policy exposes. */
function startApi() {
  return startOrigin("api", (req) => {
    const own = new URL(req.url).pathname.startsWith("/upstream-cors");
    return new Response("hello from api", {
      headers: { "x-upstream": "1", ...(own ? { "access-control-allow-origin": "*" } : {}) },
    });
  });
}

async function startEdge(originPort: number): Promise<Proxy> {
  const yaml = (await Deno.readTextFile(`${FIXTURES}edge.yaml`))
    .replaceAll("$ORIGIN_PORT", String(originPort))
    .replaceAll("$PAGE", `${FIXTURES}page.html`);
  return await startProxy(yaml);
}

/** One request with curl; `headers` as "Name: value" lines. */
async function request(
  url: string,
  method: string,
  headers: string[],
  extra: string[] = [],
): Promise<ParsedResponse> {
  const args = ["-i", "-X", method, ...extra];
  for (const h of headers) args.push("-H", h);
  const r = await curl([...args, url]);
  assert.equal(r.code, 0, r.stderr);
  return parseResponse(r.stdout);
}

const preflight = (origin: string, method = "PUT", more: string[] = []) => [
  `Origin: ${origin}`,
  `Access-Control-Request-Method: ${method}`,
  ...more,
];

/** The access-control-* headers of a response, in order. */
function acHeaders(r: ParsedResponse): [string, string][] {
  return r.headerList.filter(([n]) => n.startsWith("access-control-"));
}

Deno.test("cors filter with curl: preflights, actual requests, levels, shadow, deprecated fields", async (t) => {
  await using origin = startApi();
  await using proxy = await startEdge(origin.port);
  const api = (path: string) => proxy.url(path, "api");
  const valid = () => proxy.stat("http.api.cors.origin_valid");
  const invalid = () => proxy.stat("http.api.cors.origin_invalid");

  await t.step("an allowed preflight is answered by the proxy: 200, no body, Envoy's headers", async () => {
    const r = await request(
      api("/items"),
      "OPTIONS",
      preflight("https://app.example", "PUT", ["Access-Control-Request-Headers: x-custom"]),
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-length"), "0");
    assert.deepEqual(acHeaders(r), [
      ["access-control-allow-origin", "https://app.example"],
      ["access-control-allow-methods", "GET,POST,PUT"],
      ["access-control-allow-headers", "content-type,x-custom"],
      ["access-control-max-age", "600"],
      // the filter's own encodeHeaders runs on its local answer too, as in Envoy
      ["access-control-expose-headers", "x-upstream"],
    ]);
    assert.equal(origin.requests.length, 0, "the upstream never saw the preflight");
    assert.equal(valid(), 1);
    const [line] = await proxy.log(1);
    assert.deepEqual([line.code, line.method, line.details, line.upstreamHost], [
      "200",
      "OPTIONS",
      "cors_response",
      "-",
    ]);
  });

  await t.step("an actual request from an allowed origin gets allow-origin and expose-headers", async () => {
    const r = await request(api("/items"), "GET", ["Origin: https://x.trusted.example"]);
    assert.equal(r.status, 200);
    assert.equal(r.body, "hello from api");
    assert.deepEqual(acHeaders(r), [
      ["access-control-allow-origin", "https://x.trusted.example"],
      ["access-control-expose-headers", "x-upstream"],
    ]);
    assert.equal(origin.requests.at(-1)?.headers.get("origin"), "https://x.trusted.example");
    assert.equal(valid(), 2);
  });

  await t.step("a request without Origin is not a CORS request: nothing added, nothing counted", async () => {
    const r = await request(api("/items"), "GET", []);
    assert.deepEqual(acHeaders(r), []);
    assert.equal(valid() + invalid(), 2);
  });

  await t.step("credentials: allow-credentials on the preflight and on the response", async () => {
    const p = await request(api("/creds/me"), "OPTIONS", preflight("https://app.example", "GET"));
    assert.equal(p.headers.get("access-control-allow-credentials"), "true");
    assert.equal(
      p.headers.get("access-control-allow-methods"),
      "GET,POST,PUT",
      "inherited from the virtual host",
    );
    const r = await request(api("/creds/me"), "GET", ["Origin: https://app.example"]);
    assert.equal(r.headers.get("access-control-allow-credentials"), "true");
    assert.equal(r.headers.get("access-control-allow-origin"), "https://app.example");
  });

  await t.step(
    "a non-matching origin: counted invalid, no headers; its preflight goes upstream",
    async () => {
      const before = invalid();
      const r = await request(api("/items"), "GET", ["Origin: https://evil.example"]);
      assert.equal(r.status, 200);
      assert.deepEqual(acHeaders(r), []);
      // an upstream's own CORS headers pass untouched (Envoy does not strip them)
      const own = await request(api("/upstream-cors"), "GET", ["Origin: https://evil.example"]);
      assert.deepEqual(acHeaders(own), [["access-control-allow-origin", "*"]]);
      const n = origin.requests.length;
      const p = await request(api("/items"), "OPTIONS", preflight("https://evil.example"));
      assert.equal(p.body, "hello from api", "forward_not_matching_preflights defaults to true");
      assert.equal(origin.requests.length, n + 1);
      assert.equal(origin.requests.at(-1)?.method, "OPTIONS");
      assert.equal(invalid(), before + 3);
    },
  );

  await t.step("forward_not_matching_preflights false: answered here, 200 without allow-origin", async () => {
    const n = origin.requests.length;
    const p = await request(api("/strict/x"), "OPTIONS", preflight("https://evil.example"));
    assert.equal(p.status, 200);
    assert.equal(p.headers.get("access-control-allow-origin"), undefined);
    assert.equal(p.headers.get("access-control-allow-methods"), "GET,POST,PUT");
    assert.equal(origin.requests.length, n);
  });

  await t.step("the route's policy overrides the virtual host's field by field", async () => {
    const p = await request(api("/override/x"), "OPTIONS", preflight("https://other.example", "DELETE"));
    assert.deepEqual(acHeaders(p).slice(0, 3), [
      ["access-control-allow-origin", "https://other.example"],
      ["access-control-allow-methods", "DELETE"],
      ["access-control-allow-headers", "content-type,x-custom"],
    ]);
    const n = origin.requests.length;
    const denied = await request(api("/override/x"), "OPTIONS", preflight("https://app.example", "DELETE"));
    assert.equal(
      denied.headers.get("access-control-allow-origin"),
      undefined,
      "the route's origins replace the vhost's",
    );
    assert.equal(origin.requests.length, n + 1, "forwarded");
  });

  await t.step(
    "shadow mode: origins counted, nothing enforced or added; filter_enabled 0 alone: nothing",
    async () => {
      const [v, i, n] = [valid(), invalid(), origin.requests.length];
      const p = await request(api("/shadow/x"), "OPTIONS", preflight("https://app.example"));
      assert.equal(p.body, "hello from api", "a shadowed preflight goes upstream");
      assert.deepEqual(acHeaders(p), []);
      const r = await request(api("/shadow/x"), "GET", ["Origin: https://evil.example"]);
      assert.deepEqual(acHeaders(r), []);
      assert.deepEqual([valid(), invalid(), origin.requests.length], [v + 1, i + 1, n + 2]);
      const off = await request(api("/off/x"), "OPTIONS", preflight("https://app.example"));
      assert.equal(off.body, "hello from api");
      assert.deepEqual([valid(), invalid()], [v + 1, i + 1]);
    },
  );

  await t.step(
    "direct_response routes are left alone (no route entry for the filter, as in Envoy)",
    async () => {
      const v = valid();
      const r = await request(api("/direct"), "OPTIONS", preflight("https://app.example"));
      assert.equal(r.body, "direct");
      assert.deepEqual(acHeaders(r), []);
      assert.equal(valid(), v);
    },
  );

  await t.step("the deprecated VirtualHost.cors and RouteAction.cors fields", async () => {
    const host = "Host: legacy.example";
    const p = await request(api("/x"), "OPTIONS", [host, ...preflight("https://app.example", "GET")]);
    assert.deepEqual(acHeaders(p), [
      ["access-control-allow-origin", "https://app.example"],
      ["access-control-allow-methods", "GET"],
      ["access-control-allow-headers", "x-legacy"],
    ]);
    const q = await request(api("/patch"), "OPTIONS", [host, ...preflight("https://app.example", "PATCH")]);
    assert.equal(q.headers.get("access-control-allow-methods"), "PATCH");
    assert.equal(q.headers.get("access-control-allow-headers"), "x-legacy", "the route inherits the vhost's");
  });

  await t.step("HTTP/2 (h2c): the same preflight answer", async () => {
    const r = await request(api("/items"), "OPTIONS", preflight("https://app.example"), [
      "--http2-prior-knowledge",
    ]);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(r.headers.get("access-control-allow-methods"), "GET,POST,PUT");
  });
});

Deno.test("cors filter with headless Chromium: the browser allows or blocks cross-origin fetches", async (t) => {
  await using origin = startApi();
  await using proxy = await startEdge(origin.port);
  await using browser = await launchChromium();
  const site = proxy.url("/", "site");
  const api = (path: string) => proxy.url(path, "api");
  const page = await browser.open(site);
  const fetchFrom = (path: string, init: Record<string, unknown> = {}) =>
    page.evaluate<string>(`corsFetch(${JSON.stringify(api(path))}, ${JSON.stringify(init)})`);
  const seen = (path: string) => origin.requests.filter((r) => r.path === path).map((r) => r.method);

  await t.step("allowed origin, custom header: preflight answered by nuncio, response readable", async () => {
    const v = proxy.stat("http.api.cors.origin_valid");
    const out = await fetchFrom("/data", { headers: { "x-custom": "1" } });
    assert.equal(
      out,
      "ok 200 hello from api x-upstream=1",
      "x-upstream is readable only because it is exposed",
    );
    assert.deepEqual(seen("/data"), ["GET"], "the preflight never reached the upstream");
    assert.equal(proxy.stat("http.api.cors.origin_valid"), v + 2, "the preflight and the GET");
    const log = await proxy.log(2, 10_000);
    assert.ok(
      log.some((l) => l.method === "OPTIONS" && l.path === "/data" && l.details === "cors_response"),
      JSON.stringify(log),
    );
  });

  await t.step("origin not allowed by the route: the browser blocks, the GET is never sent", async () => {
    const out = await fetchFrom("/override/data", { headers: { "x-custom": "1" } });
    assert.equal(out, "blocked TypeError");
    assert.deepEqual(
      seen("/override/data"),
      ["OPTIONS"],
      "the non-matching preflight was forwarded, and failed",
    );
  });

  await t.step(
    "a simple request (no preflight) reaches the upstream, but the page cannot read it",
    async () => {
      assert.equal(await fetchFrom("/override/simple"), "blocked TypeError");
      assert.deepEqual(seen("/override/simple"), ["GET"]);
      assert.equal(await fetchFrom("/simple"), "ok 200 hello from api x-upstream=1");
    },
  );

  await t.step("credentials: allowed only where allow_credentials is set", async () => {
    const init = { credentials: "include", headers: { "x-custom": "1" } };
    assert.equal(await fetchFrom("/creds/data", init), "ok 200 hello from api x-upstream=1");
    assert.equal(await fetchFrom("/nocreds/data", init), "blocked TypeError");
  });
});

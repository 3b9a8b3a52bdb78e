import assert from "node:assert/strict";
import type { ForwardEntry } from "./table.ts";
import { ctx, oneHost, req, table } from "./test_util.ts";
import type { RedirectEntry, RouteEntry } from "./types.ts";
import { xxhash64String as xxhash64 } from "../../common/xxhash64.ts";

function forward(e: RouteEntry | null): ForwardEntry {
  assert.equal(e?.kind, "route");
  return e as unknown as ForwardEntry;
}

function redirect(e: RouteEntry | null): RedirectEntry {
  assert.equal(e?.kind, "redirect");
  return e as RedirectEntry;
}

Deno.test("route action", async (t) => {
  await t.step('cluster, cluster_header (first value, "" when missing)', () => {
    const rt = table(oneHost([
      { match: { prefix: "/h" }, route: { cluster_header: "X-Cluster" } },
      { match: { prefix: "/" }, route: { cluster: "fixed" } },
    ]));
    assert.equal(forward(rt.match(req("/"))).selectCluster(req("/"), 0.5), "fixed");
    const r = req("/h", { headers: [["x-cluster", "c1"], ["x-cluster", "c2"]] });
    assert.equal(forward(rt.match(r)).selectCluster(r, 0), "c1");
    assert.equal(forward(rt.match(req("/h"))).selectCluster(req("/h"), 0), "");
  });
  await t.step("weighted_clusters pick by the random number", () => {
    const rt = table(oneHost([{
      match: { prefix: "/" },
      route: {
        weighted_clusters: {
          clusters: [{ name: "a", weight: 1 }, { name: "z", weight: 0 }, { name: "b", weight: 3 }],
        },
      },
    }]));
    const e = forward(rt.match(req("/")));
    assert.equal(e.selectCluster(req("/"), 0), "a");
    assert.equal(e.selectCluster(req("/"), 0.2499), "a");
    assert.equal(e.selectCluster(req("/"), 0.25), "b");
    assert.equal(e.selectCluster(req("/"), 0.9999999), "b");
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const c = e.selectCluster(req("/"), i / 1000);
      counts[c] = (counts[c] ?? 0) + 1;
    }
    assert.deepEqual(counts, { a: 250, b: 750 });
  });
  await t.step("timeouts: 15 s default, 0s disables, idle_timeout", () => {
    const rt = table(oneHost([
      { match: { path: "/a" }, route: { cluster: "c" } },
      { match: { path: "/b" }, route: { cluster: "c", timeout: "0s", idle_timeout: "2.5s" } },
      { match: { path: "/c" }, route: { cluster: "c", timeout: { seconds: 3, nanos: 500000000 } } },
    ]));
    assert.equal(forward(rt.match(req("/a"))).timeoutMs, 15000);
    assert.equal(forward(rt.match(req("/a"))).idleTimeoutMs, undefined);
    assert.equal(forward(rt.match(req("/b"))).timeoutMs, 0);
    assert.equal(forward(rt.match(req("/b"))).idleTimeoutMs, 2500);
    assert.equal(forward(rt.match(req("/c"))).timeoutMs, 3500);
  });
  await t.step("host rewrites", () => {
    const rt = table(oneHost([
      { match: { path: "/a" }, route: { cluster: "c", host_rewrite_literal: "up.internal" } },
      { match: { path: "/b" }, route: { cluster: "c", auto_host_rewrite: true } },
    ]));
    assert.equal(forward(rt.match(req("/a"))).hostRewriteLiteral, "up.internal");
    assert.equal(forward(rt.match(req("/a"))).autoHostRewrite, false);
    assert.equal(forward(rt.match(req("/b"))).autoHostRewrite, true);
  });
});

Deno.test("path rewrites", async (t) => {
  const rt = table(oneHost([
    { match: { prefix: "/api/" }, route: { cluster: "c", prefix_rewrite: "/" } },
    { match: { prefix: "/API2", case_sensitive: false }, route: { cluster: "c", prefix_rewrite: "/v2" } },
    { match: { path: "/old" }, route: { cluster: "c", prefix_rewrite: "/new" } },
    { match: { path_separated_prefix: "/sep" }, route: { cluster: "c", prefix_rewrite: "/s" } },
    { match: { safe_regex: { regex: "/rx/.*" } }, route: { cluster: "c", prefix_rewrite: "/whole" } },
    {
      match: { prefix: "/service/" },
      route: {
        cluster: "c",
        regex_rewrite: { pattern: { regex: "^/service/([^/]+)(/.*)$" }, substitution: "\\2/instance/\\1" },
      },
    },
    {
      match: { prefix: "/g/" },
      route: { cluster: "c", regex_rewrite: { pattern: { regex: "one" }, substitution: "two$\\0" } },
    },
    {
      match: { prefix: "/i/" },
      route: { cluster: "c", regex_rewrite: { pattern: { regex: "(?i)/xxx/" }, substitution: "/yyy/" } },
    },
    { match: { prefix: "/" }, route: { cluster: "c" } },
  ]));
  const rw = (p: string) => forward(rt.match(req(p))).rewritePath(req(p));
  await t.step("prefix_rewrite replaces the matched prefix, keeps the query", () => {
    assert.equal(rw("/api/users?id=1"), "/users?id=1");
    assert.equal(rw("/Api2/x"), "/v2/x");
    assert.equal(rw("/old?q"), "/new?q");
    assert.equal(rw("/sep/x"), "/s/x");
    assert.equal(rw("/rx/abc?k=v"), "/whole?k=v");
  });
  await t.step("regex_rewrite substitutes groups over the path, keeps the query", () => {
    assert.equal(rw("/service/foo/v1/api?x=1"), "/v1/api/instance/foo?x=1");
    assert.equal(rw("/g/one/one"), "/g/two$one/two$one");
    assert.equal(rw("/i/XxX/b"), "/i/yyy/b");
  });
  await t.step("undefined without a rewrite", () => assert.equal(rw("/plain"), undefined));
});

Deno.test("redirects", async (t) => {
  const rt = table(oneHost([
    { match: { prefix: "/https" }, redirect: { https_redirect: true } },
    {
      match: { prefix: "/scheme" },
      redirect: { scheme_redirect: "HTTPS", response_code: "PERMANENT_REDIRECT" },
    },
    { match: { prefix: "/host" }, redirect: { host_redirect: "new.example.com", response_code: "FOUND" } },
    { match: { prefix: "/port" }, redirect: { port_redirect: 8443, response_code: "SEE_OTHER" } },
    { match: { path: "/p1" }, redirect: { path_redirect: "/new-path-1" } },
    { match: { path: "/p2" }, redirect: { path_redirect: "/new-path-2", strip_query: true } },
    { match: { path: "/p3" }, redirect: { path_redirect: "/new-path-3?foo=1", strip_query: true } },
    {
      match: { prefix: "/pre/" },
      redirect: { prefix_rewrite: "/post/", response_code: "TEMPORARY_REDIRECT" },
    },
    {
      match: { prefix: "/rx/" },
      redirect: {
        regex_rewrite: { pattern: { regex: "^/rx/(\\w+)$" }, substitution: "/x/\\1" },
        strip_query: true,
      },
    },
  ]));
  const go = (path: string, authority = "example.com", scheme = "http") => {
    const r = req(path, { authority, scheme });
    return redirect(rt.match(r)).redirect(r);
  };
  await t.step("https_redirect: 301, default port dropped, other ports kept", () => {
    assert.deepEqual(go("/https?a=1"), { status: 301, location: "https://example.com/https?a=1" });
    assert.equal(go("/https", "example.com:80").location, "https://example.com/https");
    assert.equal(go("/https", "example.com:8080").location, "https://example.com:8080/https");
    assert.equal(go("/https", "[::1]:80").location, "https://[::1]/https");
  });
  await t.step("scheme_redirect and 308", () => {
    assert.deepEqual(go("/scheme", "a.com:443", "https"), {
      status: 308,
      location: "https://a.com:443/scheme",
    });
    assert.deepEqual(go("/scheme"), { status: 308, location: "https://example.com/scheme" });
  });
  await t.step("host_redirect (302) and port_redirect (303)", () => {
    assert.deepEqual(go("/host/x?q", "a.com:8080"), {
      status: 302,
      location: "http://new.example.com/host/x?q",
    });
    assert.deepEqual(go("/port", "a.com:8080"), { status: 303, location: "http://a.com:8443/port" });
    assert.deepEqual(go("/port", "a.com"), { status: 303, location: "http://a.com:8443/port" });
  });
  await t.step("path_redirect and strip_query as Envoy documents", () => {
    assert.equal(go("/p1?bar=1").location, "http://example.com/new-path-1?bar=1");
    assert.equal(go("/p2?bar=1").location, "http://example.com/new-path-2");
    assert.equal(go("/p3?bar=1").location, "http://example.com/new-path-3?foo=1");
  });
  await t.step("prefix_rewrite (307) and regex_rewrite", () => {
    assert.deepEqual(go("/pre/a/b?z"), { status: 307, location: "http://example.com/post/a/b?z" });
    assert.equal(go("/rx/abc?q=1").location, "http://example.com/x/abc");
  });
});

Deno.test("direct_response", async (t) => {
  const file = Deno.makeTempFileSync();
  try {
    Deno.writeTextFileSync(file, "from file");
    const rt = table(oneHost([
      { match: { path: "/s" }, direct_response: { status: 200, body: { inline_string: "hello" } } },
      { match: { path: "/b" }, direct_response: { status: 503, body: { inline_bytes: btoa("\x00\x01") } } },
      { match: { path: "/f" }, direct_response: { status: 418, body: { filename: file } } },
      { match: { path: "/e" }, direct_response: { status: 204 } },
    ]));
    const d = (p: string) => {
      const e = rt.match(req(p));
      assert.equal(e?.kind, "direct_response");
      return e as { status: number; body: Uint8Array };
    };
    await t.step("inline_string", () => {
      assert.equal(d("/s").status, 200);
      assert.equal(new TextDecoder().decode(d("/s").body), "hello");
    });
    await t.step("inline_bytes", () => assert.deepEqual([...d("/b").body], [0, 1]));
    await t.step("filename is read at load", () => {
      Deno.writeTextFileSync(file, "changed");
      assert.equal(new TextDecoder().decode(d("/f").body), "from file");
      assert.equal(d("/f").status, 418);
    });
    await t.step("no body", () => assert.equal(d("/e").body.length, 0));
  } finally {
    Deno.removeSync(file);
  }
});

Deno.test("hash policy", async (t) => {
  const hashOf = (policies: unknown[], r = req("/"), c = ctx()) =>
    forward(
      table(oneHost([{ match: { prefix: "/" }, route: { cluster: "c", hash_policy: policies } }])).match(r),
    )
      .hash(r, c);
  await t.step("header: xxHash64 of the value, deterministic; absent -> undefined", () => {
    const r = req("/", { headers: [["x-user", "alice"]] });
    assert.equal(hashOf([{ header: { header_name: "X-User" } }], r), xxhash64("alice"));
    assert.equal(
      hashOf([{ header: { header_name: "x-user" } }], r),
      hashOf([{ header: { header_name: "x-user" } }], r),
    );
    assert.equal(hashOf([{ header: { header_name: "x-user" } }]), undefined);
  });
  await t.step("header regex_rewrite", () => {
    const r = req("/", { headers: [["x-user", "alice-123"]] });
    const p = {
      header: { header_name: "x-user", regex_rewrite: { pattern: { regex: "-\\d+" }, substitution: "" } },
    };
    assert.equal(hashOf([p], r), xxhash64("alice"));
  });
  await t.step("cookie, source ip, query parameter", () => {
    const r = req("/p?user=bob&x=1", { headers: [["cookie", 'a=1; session="s1"; b=2']] });
    assert.equal(hashOf([{ cookie: { name: "session" } }], r), xxhash64("s1"));
    assert.equal(hashOf([{ cookie: { name: "missing" } }], r), undefined);
    assert.equal(hashOf([{ connection_properties: { source_ip: true } }], r), xxhash64("10.0.0.1"));
    assert.equal(hashOf([{ query_parameter: { name: "user" } }], r), xxhash64("bob"));
    assert.equal(hashOf([{ query_parameter: { name: "nope" } }], r), undefined);
  });
  await t.step("cookie with ttl hashes a value generated from the connection when absent", () => {
    const a = hashOf([{ cookie: { name: "s", ttl: "60s" } }]);
    assert.equal(typeof a, "bigint");
    assert.equal(hashOf([{ cookie: { name: "s", ttl: "60s" } }]), a);
    assert.notEqual(
      hashOf([{ cookie: { name: "s", ttl: "60s" } }], req("/"), ctx({ remoteAddress: "1.1.1.1:1" })),
      a,
    );
  });
  await t.step("combining: rotate-left-1 then xor; terminal stops once a hash exists", () => {
    const r = req("/", { headers: [["a", "1"], ["b", "2"]] });
    const ha = xxhash64("1");
    const hb = xxhash64("2");
    const rotl = (h: bigint) => ((h << 1n) | (h >> 63n)) & ((1n << 64n) - 1n);
    assert.equal(
      hashOf([{ header: { header_name: "a" } }, { header: { header_name: "b" } }], r),
      rotl(ha) ^ hb,
    );
    assert.equal(
      hashOf([{ header: { header_name: "a" }, terminal: true }, { header: { header_name: "b" } }], r),
      ha,
    );
    // A terminal policy that produced nothing does not stop the list.
    assert.equal(
      hashOf([{ header: { header_name: "zz" }, terminal: true }, { header: { header_name: "b" } }], r),
      hb,
    );
    // Duplicate rules do not cancel out.
    assert.notEqual(hashOf([{ header: { header_name: "a" } }, { header: { header_name: "a" } }], r), 0n);
  });
  await t.step("hasHashPolicy", () => {
    const rt = table(oneHost([{ match: { prefix: "/" }, route: { cluster: "c" } }]));
    assert.equal(forward(rt.match(req("/"))).hasHashPolicy, false);
    assert.equal(forward(rt.match(req("/"))).hash(req("/"), ctx()), undefined);
  });
});

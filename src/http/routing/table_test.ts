import assert from "node:assert/strict";
import { oneHost, req, table } from "./test_util.ts";
import type { RouteEntry } from "./types.ts";

const to = (cluster: string) => ({ cluster });
const nameOf = (e: RouteEntry | null) => e?.name ?? null;

Deno.test("virtual host selection", async (t) => {
  const rt = table({
    name: "rc",
    virtual_hosts: [
      {
        name: "exact",
        domains: ["www.foo.com", "api.foo.com:8080"],
        routes: [{ match: { prefix: "/" }, route: to("a") }],
      },
      { name: "suffix-short", domains: ["*.com"], routes: [{ match: { prefix: "/" }, route: to("b") }] },
      { name: "suffix-long", domains: ["*.foo.com"], routes: [{ match: { prefix: "/" }, route: to("c") }] },
      {
        name: "suffix-dash",
        domains: ["*-bar.foo.com"],
        routes: [{ match: { prefix: "/" }, route: to("c") }],
      },
      { name: "prefix-short", domains: ["foo*"], routes: [{ match: { prefix: "/" }, route: to("d") }] },
      { name: "prefix-long", domains: ["foo.bar.*"], routes: [{ match: { prefix: "/" }, route: to("e") }] },
      { name: "default", domains: ["*"], routes: [{ match: { prefix: "/" }, route: to("f") }] },
    ],
  });
  const vh = (authority: string) => rt.match(req("/", { authority }))?.virtualHostName;
  await t.step("exact first, case-insensitive", () => {
    assert.equal(vh("www.foo.com"), "exact");
    assert.equal(vh("WWW.Foo.COM"), "exact");
  });
  await t.step("longest suffix wildcard beats shorter suffix and prefix wildcards", () => {
    assert.equal(vh("x.foo.com"), "suffix-long");
    assert.equal(vh("baz-bar.foo.com"), "suffix-dash");
    assert.equal(vh("x.bar.com"), "suffix-short");
    assert.equal(vh("foo.bar.com"), "suffix-short");
  });
  await t.step("a wildcard does not match the empty string", () => {
    assert.equal(vh("-bar.foo.com"), "suffix-long");
    assert.equal(vh(".foo.com"), "suffix-short");
    assert.equal(vh("foo"), "default");
  });
  await t.step("longest prefix wildcard", () => {
    assert.equal(vh("foo.bar.org"), "prefix-long");
    assert.equal(vh("foox.org"), "prefix-short");
  });
  await t.step("ports are matched literally by default", () => {
    assert.equal(vh("api.foo.com:8080"), "exact");
    assert.equal(vh("www.foo.com:443"), "default");
    assert.equal(vh("api.foo.com"), "suffix-long");
  });
  await t.step("no match without *", () => {
    const rt2 = table({ virtual_hosts: [{ name: "a", domains: ["a.com"], routes: [] }] });
    assert.equal(rt2.match(req("/", { authority: "b.com" })), null);
  });
  await t.step("ignore_port_in_host_matching strips the request port", () => {
    const rt2 = table({
      ignore_port_in_host_matching: true,
      virtual_hosts: [
        { name: "a", domains: ["a.com"], routes: [{ match: { prefix: "/" }, route: to("a") }] },
        { name: "v6", domains: ["[::1]"], routes: [{ match: { prefix: "/" }, route: to("a") }] },
      ],
    });
    assert.equal(rt2.match(req("/", { authority: "a.com:443" }))?.virtualHostName, "a");
    assert.equal(rt2.match(req("/", { authority: "[::1]:80" }))?.virtualHostName, "v6");
  });
});

Deno.test("path matchers", async (t) => {
  const rt = table(oneHost([
    { name: "exact", match: { path: "/exact" }, route: to("c") },
    { name: "regex", match: { safe_regex: { regex: "/re/[0-9]+" } }, route: to("c") },
    { name: "sep", match: { path_separated_prefix: "/sep" }, route: to("c") },
    { name: "ci", match: { prefix: "/CI/", case_sensitive: false }, route: to("c") },
    { name: "ci-exact", match: { path: "/Exact-CI", case_sensitive: false }, route: to("c") },
    { name: "prefix", match: { prefix: "/p" }, route: to("c") },
  ]));
  const m = (p: string) => nameOf(rt.match(req(p)));
  await t.step("path: exact, query and fragment ignored, case-sensitive", () => {
    assert.equal(m("/exact"), "exact");
    assert.equal(m("/exact?x=1"), "exact");
    assert.equal(m("/exact#frag"), "exact");
    assert.equal(m("/exact/"), null);
    assert.equal(m("/EXACT"), null);
  });
  await t.step("safe_regex: full match on the path without query", () => {
    assert.equal(m("/re/123"), "regex");
    assert.equal(m("/re/123?q=abc"), "regex");
    assert.equal(m("/re/123x"), null);
    assert.equal(m("/x/re/1"), null);
  });
  await t.step("path_separated_prefix: whole segments only", () => {
    assert.equal(m("/sep"), "sep");
    assert.equal(m("/sep/a"), "sep");
    assert.equal(m("/sep?x"), "sep");
    assert.equal(m("/separate"), null);
  });
  await t.step("case_sensitive false lowercases both sides", () => {
    assert.equal(m("/ci/x"), "ci");
    assert.equal(m("/Ci/X"), "ci");
    assert.equal(m("/exact-ci"), "ci-exact");
    assert.equal(m("/EXACT-CI?A=B"), "ci-exact");
  });
  await t.step("prefix is checked against the path without query", () => {
    assert.equal(m("/p"), "prefix");
    assert.equal(m("/pxyz"), "prefix");
    assert.equal(m("/?p"), null);
  });
  await t.step("first match in config order wins across index kinds", () => {
    const rt2 = table(oneHost([
      { name: "p1", match: { prefix: "/a/b" }, route: to("c") },
      { name: "exact", match: { path: "/a/b/c" }, route: to("c") },
      { name: "p0", match: { prefix: "/" }, route: to("c") },
      { name: "never", match: { path: "/z" }, route: to("c") },
    ]));
    assert.equal(nameOf(rt2.match(req("/a/b/c"))), "p1");
    assert.equal(nameOf(rt2.match(req("/z"))), "p0");
    assert.equal(nameOf(rt2.match(req("/?a/b/c"))), "p0");
    assert.equal(rt2.match(req("")), null);
  });
});

Deno.test("header matchers", async (t) => {
  const route = (name: string, h: Record<string, unknown>) => ({
    name,
    match: { prefix: "/", headers: [{ name: "x-h", ...h }] },
    route: to(name),
  });
  const check = (h: Record<string, unknown>, headers: [string, string][]) =>
    nameOf(table(oneHost([route("r", h)])).match(req("/", { headers }))) === "r";
  await t.step("exact / prefix / suffix / contains", () => {
    assert.ok(check({ exact_match: "abc" }, [["x-h", "abc"]]));
    assert.ok(!check({ exact_match: "abc" }, [["x-h", "abcd"]]));
    assert.ok(check({ prefix_match: "ab" }, [["x-h", "abc"]]));
    assert.ok(check({ suffix_match: "bc" }, [["x-h", "abc"]]));
    assert.ok(check({ contains_match: "b" }, [["x-h", "abc"]]));
    assert.ok(!check({ contains_match: "z" }, [["x-h", "abc"]]));
  });
  await t.step("safe_regex_match is a full match", () => {
    assert.ok(check({ safe_regex_match: { regex: "\\d{3}" } }, [["x-h", "123"]]));
    assert.ok(!check({ safe_regex_match: { regex: "\\d{3}" } }, [["x-h", "1234"]]));
  });
  await t.step("string_match with ignore_case", () => {
    assert.ok(check({ string_match: { exact: "ABC", ignore_case: true } }, [["x-h", "abc"]]));
    assert.ok(!check({ string_match: { exact: "ABC" } }, [["x-h", "abc"]]));
  });
  await t.step("range_match [start, end) on integers only", () => {
    const r = { range_match: { start: -10, end: 0 } };
    assert.ok(check(r, [["x-h", "-1"]]));
    assert.ok(!check(r, [["x-h", "0"]]));
    assert.ok(!check(r, [["x-h", "-1.5"]]));
    assert.ok(!check(r, [["x-h", "-1x"]]));
  });
  await t.step("present_match and no specifier", () => {
    assert.ok(check({ present_match: true }, [["x-h", ""]]));
    assert.ok(!check({ present_match: true }, []));
    assert.ok(check({ present_match: false }, []));
    assert.ok(!check({ present_match: false }, [["x-h", "1"]]));
    assert.ok(check({}, [["x-h", "1"]]));
    assert.ok(!check({}, []));
  });
  await t.step("invert_match; an absent header fails a value matcher even inverted", () => {
    assert.ok(check({ exact_match: "a", invert_match: true }, [["x-h", "b"]]));
    assert.ok(!check({ exact_match: "a", invert_match: true }, [["x-h", "a"]]));
    assert.ok(!check({ exact_match: "a", invert_match: true }, []));
    assert.ok(check({ present_match: true, invert_match: true }, []));
  });
  await t.step("treat_missing_header_as_empty", () => {
    assert.ok(check({ exact_match: "", treat_missing_header_as_empty: true }, []));
    assert.ok(check({ exact_match: "a", invert_match: true, treat_missing_header_as_empty: true }, []));
  });
  await t.step("several lines are joined with a comma", () => {
    assert.ok(check({ exact_match: "a,b" }, [["x-h", "a"], ["x-h", "b"]]));
  });
  await t.step("pseudo-headers :method and :authority", () => {
    const rt = table(oneHost([
      {
        name: "post",
        match: { prefix: "/", headers: [{ name: ":method", exact_match: "POST" }] },
        route: to("c"),
      },
      {
        name: "host",
        match: { prefix: "/", headers: [{ name: ":authority", suffix_match: ".org" }] },
        route: to("c"),
      },
    ]));
    assert.equal(nameOf(rt.match(req("/", { method: "POST" }))), "post");
    assert.equal(nameOf(rt.match(req("/", { authority: "a.org" }))), "host");
    assert.equal(rt.match(req("/")), null);
  });
  await t.step("a header mismatch falls through to the next route", () => {
    const rt = table(oneHost([
      { name: "v2", match: { prefix: "/", headers: [{ name: "x-v", exact_match: "2" }] }, route: to("c") },
      { name: "any", match: { prefix: "/" }, route: to("c") },
    ]));
    assert.equal(nameOf(rt.match(req("/", { headers: [["x-v", "2"]] }))), "v2");
    assert.equal(nameOf(rt.match(req("/", { headers: [["x-v", "1"]] }))), "any");
  });
});

Deno.test("query parameter matchers", async (t) => {
  const rt = table(oneHost([
    {
      name: "debug",
      match: { prefix: "/", query_parameters: [{ name: "debug", present_match: true }] },
      route: to("c"),
    },
    {
      name: "v",
      match: { prefix: "/", query_parameters: [{ name: "v", string_match: { prefix: "2" } }] },
      route: to("c"),
    },
    { name: "bare", match: { prefix: "/", query_parameters: [{ name: "bare" }] }, route: to("c") },
  ]));
  const m = (p: string) => nameOf(rt.match(req(p)));
  await t.step("present_match", () => {
    assert.equal(m("/x?debug"), "debug");
    assert.equal(m("/x?a=1&debug=0"), "debug");
    assert.equal(m("/x?debugger=1"), null);
  });
  await t.step("string_match on the first value, undecoded", () => {
    assert.equal(m("/x?v=2.1"), "v");
    assert.equal(m("/x?v=1&v=2"), null);
    assert.equal(m("/x?v=%32"), null);
    assert.equal(m("/x#v=2"), null);
  });
  await t.step("no specifier means present", () => {
    assert.equal(m("/x?bare="), "bare");
    assert.equal(m("/x"), null);
  });
});

Deno.test("index gives the same answer as a linear scan", () => {
  // Random routes of every kind and random requests: match() and matchLinear() must agree.
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const seg = ["a", "b", "ab", "A", "api", "v1", "x"];
  const randPath = () => {
    let p = "";
    const n = rnd(4);
    for (let i = 0; i < n; i++) p += "/" + seg[rnd(seg.length)];
    return p + (rnd(3) === 0 ? "/" : "");
  };
  const routes = [];
  for (let i = 0; i < 300; i++) {
    const kind = rnd(5);
    const match: Record<string, unknown> = kind === 0
      ? { prefix: randPath() }
      : kind === 1
      ? { path: randPath() || "/" }
      : kind === 2
      ? { path_separated_prefix: (randPath() || "/a").replace(/\/$/, "") || "/a" }
      : kind === 3
      ? {
        safe_regex: { regex: [`${randPath()}/[a-z]+`, `(?i)${randPath()}.*`, `${randPath()}|/a/b?`][rnd(3)] },
      }
      : { prefix: randPath(), case_sensitive: false };
    if (rnd(4) === 0) match.headers = [{ name: "x-h", exact_match: String(rnd(2)) }];
    if (rnd(6) === 0) match.query_parameters = [{ name: "q" }];
    routes.push({ name: `r${i}`, match, route: to("c") });
  }
  const rt = table(oneHost(routes));
  for (let i = 0; i < 5000; i++) {
    const path = randPath() + (rnd(3) === 0 ? "?q=1" : "");
    const r = req(path || "/", { headers: rnd(2) ? [["x-h", String(rnd(2))]] : [] });
    assert.equal(nameOf(rt.match(r)), nameOf(rt.matchLinear(r)), `path ${r.path}`);
  }
});

Deno.test("match.grpc: only gRPC content-types match; decorator kept on the route", () => {
  const rt = table(oneHost([
    {
      name: "grpc",
      match: { prefix: "/", grpc: {} },
      route: to("g"),
      decorator: { operation: "grpc-call" },
    },
    {
      name: "other",
      match: { prefix: "/" },
      route: to("h"),
      decorator: { operation: "web", propagate: false },
    },
  ]));
  const ct = (v: string) => req("/pkg.Svc/Method", { method: "POST", headers: [["content-type", v]] });
  for (const v of ["application/grpc", "application/grpc+proto", "application/grpc;charset=x"]) {
    assert.equal(nameOf(rt.match(ct(v))), "grpc", v);
    assert.equal(nameOf(rt.matchLinear(ct(v))), "grpc", v);
  }
  for (
    const v of ["application/grpc-web", "application/grpc-web-text", "application/json", "application/grpcx"]
  ) {
    assert.equal(nameOf(rt.match(ct(v))), "other", v);
  }
  assert.equal(nameOf(rt.match(req("/pkg.Svc/Method"))), "other");
  assert.deepEqual(rt.match(ct("application/grpc"))?.decorator, { operation: "grpc-call", propagate: true });
  assert.deepEqual(rt.match(req("/"))?.decorator, { operation: "web", propagate: false });
  assert.equal(
    table(oneHost([{ match: { prefix: "/" }, route: to("a") }])).match(req("/"))?.decorator,
    undefined,
  );
});

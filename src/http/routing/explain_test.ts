import assert from "node:assert/strict";
import { explainRoute } from "./explain.ts";
import { req, table } from "./test_util.ts";

const rt = table({
  name: "rc",
  virtual_hosts: [
    {
      name: "api",
      domains: ["api.example.com"],
      routes: [{ match: { prefix: "/" }, route: { cluster: "api" } }],
    },
    {
      name: "shop",
      domains: ["*.example.com", "shop.*"],
      routes: [
        { name: "exact", match: { path: "/cart" }, route: { cluster: "cart" } },
        {
          name: "beta",
          match: { prefix: "/", headers: [{ name: "x-beta", string_match: { exact: "1" } }] },
          route: { cluster: "beta" },
        },
        {
          name: "grpc",
          match: { prefix: "/svc.", grpc: {} },
          route: { cluster: "grpc" },
        },
        { name: "regex", match: { safe_regex: { regex: "/item/[0-9]+" } }, route: { cluster: "items" } },
        {
          name: "split",
          match: { prefix: "/" },
          route: {
            weighted_clusters: { clusters: [{ name: "blue", weight: 75 }, { name: "green", weight: 25 }] },
          },
        },
      ],
    },
    { name: "fallback", domains: ["*"], routes: [{ match: { prefix: "/x" }, route: { cluster: "x" } }] },
  ],
});

Deno.test("explainRoute: virtual hosts considered and why each lost", () => {
  const ex = explainRoute(rt, req("/cart", { authority: "shop.example.com" }), { random: 0.1 });
  assert.equal(ex.virtualHost, "shop");
  const [api, shop, fallback] = ex.virtualHosts;
  assert.match(api.reason, /domain mismatch: none of \['api.example.com'\] matches 'shop.example.com'/);
  assert.equal(shop.selected, true);
  assert.match(shop.reason, /domain '\*\.example\.com' \(suffix wildcard\)/);
  assert.match(fallback.reason, /'\*' \(catch-all\) matches, but virtual host 'shop' wins/);
  assert.equal(ex.route?.name, "exact");
  assert.deepEqual(ex.cluster, { name: "cart", specifier: "cluster", reason: "fixed cluster 'cart'" });
});

Deno.test("explainRoute: every route tried with the reason it failed", () => {
  const ex = explainRoute(rt, req("/svc.Foo/Bar", { authority: "shop.example.com" }), { random: 0.9 });
  assert.deepEqual(ex.routes.map((r) => [r.name, r.matched]), [
    ["exact", false],
    ["beta", false],
    ["grpc", false],
    ["regex", false],
    ["split", true],
  ]);
  assert.match(ex.routes[0].reason, /path '\/cart' != '\/svc.Foo\/Bar'/);
  assert.match(ex.routes[1].reason, /header matcher x-beta exact '1' failed/);
  assert.match(ex.routes[2].reason, /grpc: content-type '' is not gRPC/);
  assert.match(ex.routes[3].reason, /safe_regex '.*' does not match path/);
  assert.equal(ex.cluster?.specifier, "weighted_clusters");
  assert.equal(ex.cluster?.name, "green"); // 0.9 of 100 falls past blue's 75
  assert.deepEqual(ex.cluster?.weights, [
    { name: "blue", weight: 75, percent: 75 },
    { name: "green", weight: 25, percent: 25 },
  ]);
  assert.match(ex.cluster!.reason, /weighted draw 90 of 100/);
});

Deno.test("explainRoute: the same answer as match() and no route", () => {
  const grpc = req("/svc.Foo/Bar", {
    authority: "shop.example.com",
    headers: [["content-type", "application/grpc"]],
  });
  const ex = explainRoute(rt, grpc, { random: 0.5 });
  assert.equal(ex.route?.name, rt.match(grpc)?.name);
  assert.equal(ex.route?.name, "grpc");
  const none = explainRoute(rt, req("/nothing", { authority: "other.org" }));
  assert.equal(none.virtualHost, "fallback");
  assert.equal(none.route, null);
  assert.match(none.routes[0].reason, /prefix '\/x' does not match path '\/nothing'/);
  assert.equal(none.entry, null);
});

Deno.test("explainRoute: no virtual host at all", () => {
  const only = table({ name: "o", virtual_hosts: [{ name: "a", domains: ["a.com"], routes: [] }] });
  const ex = explainRoute(only, req("/", { authority: "b.com" }));
  assert.equal(ex.virtualHost, null);
  assert.deepEqual(ex.routes, []);
});

Deno.test("explainRoute: a runtime_fraction that is off for this draw says so", () => {
  const rf = table({
    name: "rf",
    virtual_hosts: [{
      name: "v",
      domains: ["*"],
      routes: [
        {
          name: "canary",
          match: {
            prefix: "/",
            runtime_fraction: {
              default_value: { numerator: 0, denominator: "HUNDRED" },
              runtime_key: "canary",
            },
          },
          route: { cluster: "canary" },
        },
        { name: "stable", match: { prefix: "/" }, route: { cluster: "stable" } },
      ],
    }],
  });
  const ex = explainRoute(rf, req("/"), { random: 0.3 });
  assert.match(
    ex.routes[0].reason,
    /runtime_fraction 'canary' \(0\/100 by default\) not enabled for this draw/,
  );
  assert.equal(ex.cluster?.name, "stable");
});

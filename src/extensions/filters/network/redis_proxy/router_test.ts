import assert from "node:assert/strict";
import { redisProxySchema } from "./config.ts";
import { PrefixRouter, shouldMirror } from "./router.ts";

const enc = new TextEncoder();

function router(prefixRoutes: Record<string, unknown>): PrefixRouter {
  const c = redisProxySchema.parse({
    stat_prefix: "r",
    settings: { op_timeout: "1s" },
    prefix_routes: prefixRoutes,
  });
  return new PrefixRouter(c.prefix_routes);
}

function clusterOf(r: PrefixRouter, key: string): string | undefined {
  const b = enc.encode(key);
  return r.route(b, 0, b.length)?.cluster;
}

Deno.test("prefix routes: longest prefix wins, then the catch-all", () => {
  const r = router({
    routes: [{ prefix: "ab", cluster: "a" }, { prefix: "abc", cluster: "b" }, { prefix: "x:", cluster: "x" }],
    catch_all_route: { cluster: "all" },
  });
  assert.equal(clusterOf(r, "abc:users"), "b");
  assert.equal(clusterOf(r, "ab:users"), "a");
  assert.equal(clusterOf(r, "x:1"), "x");
  assert.equal(clusterOf(r, "z:users"), "all");
  assert.equal(clusterOf(r, "ABC:users"), "all");
  assert.equal(clusterOf(r, "a"), "all");
});

Deno.test("prefix routes: case_insensitive, no catch-all, remove_prefix", () => {
  const r = router({
    case_insensitive: true,
    routes: [{ prefix: "AbC", cluster: "b", remove_prefix: true }],
  });
  assert.equal(clusterOf(r, "abc:1"), "b");
  assert.equal(clusterOf(r, "ABC:1"), "b");
  assert.equal(clusterOf(r, "abd"), undefined);
  const b = enc.encode("ABC:1");
  const route = r.route(b, 0, b.length)!;
  assert.equal(route.removePrefix, true);
  assert.equal(route.prefix.length, 3);
});

Deno.test("config: duplicate prefixes and missing routes are rejected; v3 has no cluster field", () => {
  const bad = (pr: unknown, extra: Record<string, unknown> = {}) =>
    redisProxySchema.safeParse({
      stat_prefix: "r",
      settings: { op_timeout: "1s" },
      prefix_routes: pr,
      ...extra,
    });
  assert.match(
    JSON.stringify(
      bad({ case_insensitive: true, routes: [{ prefix: "a", cluster: "x" }, { prefix: "A", cluster: "y" }] })
        .error,
    ),
    /already exists/,
  );
  assert.equal(bad({}).success, false);
  assert.equal(bad({ catch_all_route: { cluster: "c" } }, { cluster: "c" }).success, false);
  assert.equal(
    redisProxySchema.safeParse({
      stat_prefix: "r",
      settings: {},
      prefix_routes: { catch_all_route: { cluster: "c" } },
    })
      .success,
    false,
    "op_timeout is required",
  );
});

Deno.test("mirror policies: exclude_read_commands and runtime fraction defaults", () => {
  assert.equal(shouldMirror({ cluster: "m", excludeReadCommands: true }, false), false);
  assert.equal(shouldMirror({ cluster: "m", excludeReadCommands: true }, true), true);
  assert.equal(shouldMirror({ cluster: "m", excludeReadCommands: false }, false), true);
  const never = { key: "", numerator: 0, denominator: 100 };
  assert.equal(shouldMirror({ cluster: "m", excludeReadCommands: false, fraction: never }, true), false);
  const always = { key: "", numerator: 100, denominator: 100 };
  assert.equal(shouldMirror({ cluster: "m", excludeReadCommands: false, fraction: always }, true), true);
});

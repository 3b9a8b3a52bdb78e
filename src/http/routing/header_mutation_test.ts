import assert from "node:assert/strict";
import { ManualClock } from "../../common/clock.ts";
import { HeaderMap } from "../headers.ts";
import { ctx, req, table } from "./test_util.ts";

const add = (key: string, value: string, extra: Record<string, unknown> = {}) => ({
  header: { key, value },
  ...extra,
});

function config(mostSpecificWins: boolean): unknown {
  return {
    most_specific_header_mutations_wins: mostSpecificWins,
    request_headers_to_add: [add("x-level", "global", { append: false })],
    response_headers_to_add: [add("x-resp", "global")],
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      request_headers_to_add: [add("x-level", "vhost", { append: false })],
      request_headers_to_remove: ["x-route-only"],
      response_headers_to_add: [add("x-resp", "vhost")],
      routes: [{
        match: { prefix: "/" },
        route: {
          weighted_clusters: {
            clusters: [
              {
                name: "a",
                weight: 1,
                request_headers_to_add: [add("x-level", "cluster", { append: false })],
              },
              { name: "b", weight: 1 },
            ],
          },
        },
        request_headers_to_add: [add("x-level", "route", { append: false }), add("x-route-only", "1")],
        response_headers_to_add: [add("x-resp", "route")],
      }],
    }],
  };
}

Deno.test("header mutation order across levels", async (t) => {
  await t.step("default: route, then vhost, then global (least specific wins, removals per level)", () => {
    const e = table(config(false)).match(req("/"))!;
    const h = new HeaderMap();
    e.requestHeaders.apply(h, ctx());
    assert.deepEqual([...h], [["x-level", "global"]]);
    const resp = new HeaderMap();
    e.responseHeaders.apply(resp, ctx());
    assert.deepEqual(resp.getAll("x-resp"), ["route", "vhost", "global"]);
  });
  await t.step("most_specific_header_mutations_wins reverses the order", () => {
    const e = table(config(true)).match(req("/"))!;
    const h = new HeaderMap();
    e.requestHeaders.apply(h, ctx());
    assert.deepEqual([...h].sort(), [["x-level", "route"], ["x-route-only", "1"]]);
    const resp = new HeaderMap();
    e.responseHeaders.apply(resp, ctx());
    assert.deepEqual(resp.getAll("x-resp"), ["global", "vhost", "route"]);
  });
  await t.step("weighted cluster level is the most specific", () => {
    const e = table(config(true)).match(req("/")) as unknown as {
      mutationsFor(c: string): { requestHeaders: { apply(h: HeaderMap, c: unknown): void } };
    };
    const h = new HeaderMap();
    e.mutationsFor("a").requestHeaders.apply(h, ctx());
    assert.equal(h.get("x-level"), "cluster");
    const h2 = new HeaderMap();
    e.mutationsFor("b").requestHeaders.apply(h2, ctx());
    assert.equal(h2.get("x-level"), "route");
  });
  await t.step("empty when nothing is configured", () => {
    const e = table({
      virtual_hosts: [{
        name: "v",
        domains: ["*"],
        routes: [{ match: { prefix: "/" }, route: { cluster: "c" } }],
      }],
    })
      .match(req("/"))!;
    assert.equal(e.requestHeaders.empty, true);
    assert.equal(e.responseHeaders.empty, true);
  });
});

function mutate(
  adds: unknown[],
  removes: string[],
  start: [string, string][],
  c = ctx(),
): [string, string][] {
  const e = table({
    virtual_hosts: [{
      name: "v",
      domains: ["*"],
      routes: [{
        match: { prefix: "/" },
        route: { cluster: "c" },
        request_headers_to_add: adds,
        request_headers_to_remove: removes,
      }],
    }],
  }, { clock: new ManualClock(Date.UTC(2024, 0, 2, 3, 4, 5, 678)) }).match(req("/"))!;
  const h = HeaderMap.from(start);
  e.requestHeaders.apply(h, c);
  return [...h];
}

Deno.test("append semantics", async (t) => {
  const start: [string, string][] = [["x-a", "old"], ["x-a", "old2"]];
  await t.step("append (default true) adds a line", () => {
    assert.deepEqual(mutate([add("x-a", "new")], [], start), [["x-a", "old"], ["x-a", "old2"], [
      "x-a",
      "new",
    ]]);
  });
  await t.step("append: false overwrites", () => {
    assert.deepEqual(mutate([add("x-a", "new", { append: false })], [], start), [["x-a", "new"]]);
  });
  await t.step("append_action values", () => {
    assert.deepEqual(mutate([add("x-a", "n", { append_action: "ADD_IF_ABSENT" })], [], start), start);
    assert.deepEqual(mutate([add("x-b", "n", { append_action: "ADD_IF_ABSENT" })], [], []), [["x-b", "n"]]);
    assert.deepEqual(mutate([add("x-b", "n", { append_action: "OVERWRITE_IF_EXISTS" })], [], []), []);
    assert.deepEqual(mutate([add("x-a", "n", { append_action: "OVERWRITE_IF_EXISTS" })], [], start), [[
      "x-a",
      "n",
    ]]);
    assert.deepEqual(mutate([add("x-b", "n", { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" })], [], []), [[
      "x-b",
      "n",
    ]]);
  });
  await t.step("two overwrites of one key in one level both survive", () => {
    assert.deepEqual(
      mutate([add("x-a", "1", { append: false }), add("x-a", "2", { append: false })], [], start),
      [["x-a", "1"], ["x-a", "2"]],
    );
  });
  await t.step("removals run before additions", () => {
    assert.deepEqual(mutate([add("x-a", "new")], ["X-A"], start), [["x-a", "new"]]);
  });
  await t.step("empty values are dropped unless keep_empty_value", () => {
    assert.deepEqual(mutate([add("x-e", "")], [], []), []);
    assert.deepEqual(mutate([add("x-e", "", { keep_empty_value: true })], [], []), [["x-e", ""]]);
    assert.deepEqual(mutate([add("x-e", "%REQ(x-missing)%")], [], []), []);
  });
});

Deno.test("header value formatters", async (t) => {
  const one = (value: string, start: [string, string][] = [], c = ctx()) =>
    mutate([add("x-f", value)], [], start, c).find(([n]) => n === "x-f")?.[1];
  await t.step("addresses and protocol", () => {
    assert.equal(one("%DOWNSTREAM_REMOTE_ADDRESS%"), "10.0.0.1:5555");
    assert.equal(one("ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%!"), "ip=10.0.0.1!");
    assert.equal(one("%DOWNSTREAM_LOCAL_ADDRESS%"), "10.0.0.2:8080");
    assert.equal(one("%UPSTREAM_REMOTE_ADDRESS%"), "10.0.0.3:80");
    assert.equal(one("%PROTOCOL%"), "HTTP/1.1");
    assert.equal(
      one("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", [], ctx({ remoteAddress: "[::1]:80" })),
      "::1",
    );
  });
  await t.step("REQ with alternative and truncation; pseudo-headers from the request", () => {
    assert.equal(one("%REQ(User-Agent)%", [["user-agent", "curl/8"]]), "curl/8");
    assert.equal(one("%REQ(x-a?x-b)%", [["x-b", "bee"]]), "bee");
    assert.equal(one("%REQ(x-a):3%", [["x-a", "abcdef"]]), "abc");
    assert.equal(
      one("%REQ(:path)% %REQ(host)%", [], ctx({ request: req("/p?q", { authority: "h.com" }) })),
      "/p?q h.com",
    );
  });
  await t.step("REQ on response headers reads the request", () => {
    const e = table({
      virtual_hosts: [{
        name: "v",
        domains: ["*"],
        routes: [{
          match: { prefix: "/" },
          route: { cluster: "c" },
          response_headers_to_add: [add("x-echo", "%REQ(x-id)%")],
        }],
      }],
    }).match(req("/"))!;
    const resp = new HeaderMap();
    e.responseHeaders.apply(resp, ctx({ request: req("/", { headers: [["x-id", "42"]] }) }));
    assert.equal(resp.get("x-echo"), "42");
  });
  await t.step("START_TIME: default format, custom format, context time first", () => {
    assert.equal(one("%START_TIME%"), "2024-01-02T03:04:05.678Z");
    assert.equal(one("%START_TIME(%Y/%m/%d %H:%M:%S %s %3f %%)%"), "2024/01/02 03:04:05 1704164645 678 %");
    assert.equal(one("%START_TIME(%s)%", [], ctx({ startTime: 1000_000 })), "1000");
  });
  await t.step("%% is a literal percent", () => assert.equal(one("100%%"), "100%"));
});

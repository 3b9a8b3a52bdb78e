import assert from "node:assert/strict";
import {
  mergeCriteria,
  MetadataMatchCriteria,
  requestCriteria,
  setDynamicMetadata,
  valueKey,
} from "./metadata_match.ts";
import { oneHost, req, table } from "../http/routing/test_util.ts";
import type { RouteActionEntry } from "../http/routing/types.ts";

const lb = (fields: Record<string, unknown>) => ({ filter_metadata: { "envoy.lb": fields } });

Deno.test("metadata match criteria", async (t) => {
  await t.step("values compare by content, as protobuf Values", () => {
    assert.equal(valueKey({ b: 1, a: [true, "x"] }), valueKey({ a: [true, "x"], b: 1.0 }));
    assert.notEqual(valueKey(true), valueKey("true"));
    assert.notEqual(valueKey(1), valueKey("1"));
    assert.equal(valueKey(null), "null");
  });

  await t.step("sorted by name; merge overrides, filter keeps names", () => {
    const c = MetadataMatchCriteria.fromStruct({ version: "v1", canary: true })!;
    assert.deepEqual(c.names, ["canary", "version"]);
    assert.equal(c.namesKey, "canary\u0000version");
    const m = c.merge({ canary: false, zone: "a" });
    assert.deepEqual(m.names, ["canary", "version", "zone"]);
    assert.equal(m.get("canary"), false);
    assert.deepEqual(m.filter(new Set(["zone"]))?.names, ["zone"]);
    assert.equal(m.filter(new Set(["nope"])), null);
    assert.equal(MetadataMatchCriteria.fromStruct({}), null);
    assert.equal(mergeCriteria(c, {}), c);
    assert.equal(mergeCriteria(null, {}), null);
    assert.equal(
      MetadataMatchCriteria.fromStruct({ canary: true, version: "v1" })!.key,
      c.key,
      "field order does not matter",
    );
  });

  await t.step("request dynamic metadata in envoy.lb overrides the route's criteria", () => {
    const route = MetadataMatchCriteria.fromStruct({ canary: false, version: "v1" });
    assert.equal(requestCriteria(route, null), route);
    assert.equal(requestCriteria(route, { other: { canary: true } }), route);
    const dyn = setDynamicMetadata(null, "envoy.lb", { canary: true });
    setDynamicMetadata(dyn, "envoy.lb", { zone: "b" });
    const merged = requestCriteria(route, dyn)!;
    assert.deepEqual(merged.names, ["canary", "version", "zone"]);
    assert.equal(merged.get("canary"), true);
    assert.deepEqual(requestCriteria(null, dyn)?.names, ["canary", "zone"]);
  });

  await t.step("routes: metadata_match, and weighted clusters merging theirs over it", () => {
    const rt = table(oneHost([
      { match: { prefix: "/plain" }, route: { cluster: "a" } },
      { match: { prefix: "/fixed" }, route: { cluster: "a", metadata_match: lb({ stage: "prod" }) } },
      {
        match: { prefix: "/split" },
        route: {
          metadata_match: lb({ stage: "prod", canary: false }),
          weighted_clusters: {
            clusters: [
              { name: "svc", weight: 10, metadata_match: lb({ canary: true }) },
              { name: "svc", weight: 90 },
            ],
          },
        },
      },
    ]));
    const entry = (path: string) => rt.match(req(path)) as unknown as RouteActionEntry;
    assert.equal(entry("/plain").metadataMatchFor!(0.5), null);
    assert.deepEqual(entry("/fixed").metadataMatchFor!(0.5)?.names, ["stage"]);
    const split = entry("/split");
    assert.equal(split.selectCluster(req("/split"), 0.05), "svc");
    const canary = split.metadataMatchFor!(0.05)!;
    assert.equal(canary.get("canary"), true);
    assert.equal(canary.get("stage"), "prod");
    assert.equal(split.metadataMatchFor!(0.5)!.get("canary"), false);
  });

  await t.step("schema: typed_filter_metadata is not supported; a Struct must be an object", () => {
    assert.throws(
      () =>
        table(
          oneHost([{
            match: { prefix: "/" },
            route: { cluster: "a", metadata_match: { typed_filter_metadata: {} } },
          }]),
        ),
      /not supported/,
    );
    assert.throws(
      () =>
        table(
          oneHost([{ match: { prefix: "/" }, route: { cluster: "a", metadata_match: lb([] as never) } }]),
        ),
      /Struct/,
    );
  });
});

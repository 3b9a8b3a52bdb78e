import assert from "node:assert/strict";
import { HeaderMap } from "./headers.ts";

Deno.test("HeaderMap", async (t) => {
  const pairs = (m: HeaderMap) => [...m];
  await t.step("set replaces the first line and drops later duplicates in place", () => {
    const m = HeaderMap.from([["A", "1"], ["b", "2"], ["a", "3"], ["c", "4"], ["a", "5"]]);
    m.set("A", "x");
    assert.deepEqual(pairs(m), [["a", "x"], ["b", "2"], ["c", "4"]]);
    m.set("d", "y");
    assert.deepEqual(pairs(m), [["a", "x"], ["b", "2"], ["c", "4"], ["d", "y"]]);
    assert.equal(m.names.length, m.values.length);
  });
  await t.step("remove counts and keeps the order of the rest", () => {
    const m = HeaderMap.from([["a", "1"], ["b", "2"], ["a", "3"], ["c", "4"]]);
    assert.equal(m.remove("a"), 2);
    assert.equal(m.remove("zz"), 0);
    assert.deepEqual(pairs(m), [["b", "2"], ["c", "4"]]);
    assert.equal(m.values.length, 2);
  });
  await t.step("removePrefix", () => {
    const m = HeaderMap.from([["x-envoy-a", "1"], ["b", "2"], ["x-envoy-b", "3"], ["x-envoyz", "4"]]);
    m.removePrefix("x-envoy-");
    assert.deepEqual(pairs(m), [["b", "2"], ["x-envoyz", "4"]]);
    assert.equal(m.get("x-envoyz"), "4");
    assert.equal(m.values.length, 2);
  });
});

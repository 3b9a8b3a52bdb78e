import assert from "node:assert/strict";
import { createEntry, RuntimeSnapshot } from "./snapshot.ts";
import { requestIdToInteger } from "./request_id.ts";

function snap(values: Record<string, string>): RuntimeSnapshot {
  return new RuntimeSnapshot([{
    name: "l",
    values: new Map(Object.entries(values).map(([k, v]) => [k, createEntry(v)])),
  }]);
}

Deno.test("createEntry parses as Envoy's resolveEntryType", () => {
  assert.deepEqual(createEntry("true"), { raw: "true", bool: true });
  assert.deepEqual(createEntry(" FALSE \n"), { raw: " FALSE \n", bool: false });
  // an integer is a boolean (non-zero), a double and a uint
  assert.deepEqual(createEntry("10"), { raw: "10", bool: true, double: 10, uint: 10 });
  assert.deepEqual(createEntry("0"), { raw: "0", bool: false, double: 0, uint: 0 });
  assert.deepEqual(createEntry("+7"), { raw: "+7", bool: true, double: 7, uint: 7 });
  // a double: floored into the uint, not a boolean
  assert.deepEqual(createEntry("3.9"), { raw: "3.9", double: 3.9, uint: 3 });
  assert.deepEqual(createEntry("1e2"), { raw: "1e2", double: 100, uint: 100 });
  // negative: a double only
  assert.deepEqual(createEntry("-2"), { raw: "-2", double: -2 });
  // a FractionalPercent in YAML or JSON
  assert.deepEqual(createEntry("numerator: 5\ndenominator: TEN_THOUSAND").fraction, {
    numerator: 5,
    denominator: 10_000,
  });
  assert.deepEqual(createEntry('{"numerator": 3}').fraction, { numerator: 3, denominator: 100 });
  assert.deepEqual(createEntry("{}").fraction, { numerator: 0, denominator: 100 });
  // neither: the raw string only
  assert.deepEqual(createEntry("hello"), { raw: "hello" });
  assert.deepEqual(createEntry(""), { raw: "" });
  assert.deepEqual(createEntry("numerator: 5\nbogus: 1"), { raw: "numerator: 5\nbogus: 1" });
  assert.deepEqual(createEntry("[1, 2]"), { raw: "[1, 2]" });
});

Deno.test("snapshot lookups: getInteger, getDouble, getBoolean, defaults", () => {
  const s = snap({ n: "42", d: "0.25", t: "true", f: "false", s: "hello", z: "0" });
  assert.equal(s.getInteger("n", 1), 42);
  assert.equal(s.getInteger("d", 1), 0);
  assert.equal(s.getInteger("t", 1), 1, "a boolean is no integer");
  assert.equal(s.getInteger("missing", 9), 9);
  assert.equal(s.getInteger("", 9), 9);
  assert.equal(s.getDouble("d", 1), 0.25);
  assert.equal(s.getDouble("s", 1.5), 1.5);
  assert.equal(s.getBoolean("t", false), true);
  assert.equal(s.getBoolean("f", true), false);
  assert.equal(s.getBoolean("n", false), true);
  assert.equal(s.getBoolean("z", true), false);
  assert.equal(s.getBoolean("s", true), true);
  assert.equal(s.get("s"), "hello");
  assert.equal(s.get("missing"), undefined);
});

Deno.test("later layers override earlier ones", () => {
  const e = (v: string) => createEntry(v);
  const s = new RuntimeSnapshot([
    { name: "a", values: new Map([["k", e("1")], ["only_a", e("x")]]) },
    { name: "b", values: new Map([["k", e("2")]]) },
  ], 3);
  assert.equal(s.getInteger("k", 0), 2);
  assert.equal(s.get("only_a"), "x");
  assert.equal(s.size, 2);
  assert.equal(s.version, 3);
});

Deno.test("featureEnabled with a FractionalPercent default: runtime fraction, integer percent, default", () => {
  const s = snap({ frac: "numerator: 1\ndenominator: MILLION", pct: "30", over: "101", zero: "0", bad: "x" });
  // default 50/100 when the key is absent or not a number
  assert.equal(s.fractionEnabled("missing", 50, 100, 49), true);
  assert.equal(s.fractionEnabled("missing", 50, 100, 50), false);
  assert.equal(s.fractionEnabled("bad", 50, 100, 149), true, "random is taken modulo the denominator");
  assert.equal(s.fractionEnabled("", 50, 100, 10), true);
  // an integer is a percent of 100, whatever the default's denominator
  assert.equal(s.fractionEnabled("pct", 5, 10_000, 29), true);
  assert.equal(s.fractionEnabled("pct", 5, 10_000, 30), false);
  assert.equal(s.fractionEnabled("over", 0, 100, 99), true, "over 100: always");
  assert.equal(s.fractionEnabled("zero", 100, 100, 0), false);
  // a FractionalPercent value replaces the default entirely
  assert.equal(s.fractionEnabled("frac", 100, 100, 0), true);
  assert.equal(s.fractionEnabled("frac", 100, 100, 1), false);
  assert.equal(s.fractionEnabled("frac", 100, 100, 1_000_000), true);
});

Deno.test("featureEnabled with a percent default and with buckets", () => {
  const s = snap({ on: "100", off: "0", big: "250", ten: "10" });
  assert.equal(s.featureEnabled("on", 0), true);
  assert.equal(s.featureEnabled("off", 100), false);
  assert.equal(s.featureEnabled("big", 0), true);
  assert.equal(s.featureEnabled("missing", 100), true);
  assert.equal(s.featureEnabled("missing", 0), false);
  let hits = 0;
  for (let i = 0; i < 20_000; i++) if (s.featureEnabled("ten", 0)) hits++;
  assert.ok(hits > 1_500 && hits < 2_500, `about 10 %: ${hits}`);
  // access log runtime_filter: random % buckets < min(value, buckets)
  assert.equal(s.featureEnabledBuckets("ten", 0, 9, 100), true);
  assert.equal(s.featureEnabledBuckets("ten", 0, 110, 100), false);
  assert.equal(s.featureEnabledBuckets("missing", 5, 4, 10_000), true);
  assert.equal(s.featureEnabledBuckets("missing", 5, 5, 10_000), false);
});

Deno.test("requestIdToInteger reads the first 8 hex characters", () => {
  assert.equal(requestIdToInteger("0000000a-1111-4222-8333-444444444444"), 10);
  assert.equal(requestIdToInteger("FFFFFFFF"), 0xffffffff);
  assert.equal(requestIdToInteger("abc"), undefined);
  assert.equal(requestIdToInteger("zzzzzzzz-x"), undefined);
  assert.equal(requestIdToInteger(undefined), undefined);
});

import assert from "node:assert/strict";
import { setRuntime } from "../../runtime/current.ts";
import { createEntry, EMPTY_SNAPSHOT, RuntimeSnapshot } from "../../runtime/snapshot.ts";
import { oneHost, req, table } from "./test_util.ts";

function withRuntime(values: Record<string, string>, fn: () => void): void {
  setRuntime(
    new RuntimeSnapshot([{
      name: "t",
      values: new Map(Object.entries(values).map(([k, v]) => [k, createEntry(v)])),
    }]),
  );
  try {
    fn();
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
  }
}

/** Route names picked for `n` lookups (index and linear scan agree on the kind of answer). */
function picks(rt: ReturnType<typeof table>, n: number, linear = false): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = linear ? rt.matchLinear(req("/api")) : rt.match(req("/api"));
    const name = e?.name ?? "none";
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

const fraction = (numerator: number, key = "shift", denominator = "HUNDRED") => ({
  prefix: "/api",
  runtime_fraction: { default_value: { numerator, denominator }, runtime_key: key },
});

Deno.test("route runtime_fraction: the default share, the runtime's share, fall-through", () => {
  const rt = table(oneHost([
    { name: "v1", match: fraction(0), route: { cluster: "v1" } },
    { name: "v2", match: { prefix: "/" }, route: { cluster: "v2" } },
  ]));
  assert.deepEqual(picks(rt, 50), new Map([["v2", 50]]));
  withRuntime({ shift: "100" }, () => assert.deepEqual(picks(rt, 50), new Map([["v1", 50]])));
  withRuntime(
    { shift: "numerator: 0\ndenominator: MILLION" },
    () => assert.deepEqual(picks(rt, 20), new Map([["v2", 20]])),
  );
  withRuntime({ shift: "50" }, () => {
    const p = picks(rt, 4000);
    assert.ok(Math.abs(p.get("v1")! - 2000) < 250, `about half: ${[...p]}`);
    const l = picks(rt, 4000, true);
    assert.ok(Math.abs(l.get("v1")! - 2000) < 250, `linear scan too: ${[...l]}`);
  });
  // no runtime key: the default alone
  const fixed = table(oneHost([
    {
      name: "v1",
      match: { prefix: "/api", runtime_fraction: { default_value: { numerator: 100 } } },
      route: { cluster: "a" },
    },
    { name: "v2", match: { prefix: "/" }, route: { cluster: "b" } },
  ]));
  assert.deepEqual(picks(fixed, 20), new Map([["v1", 20]]));
});

Deno.test("route runtime_fraction: consecutive fractions test one random value per lookup (Envoy's split)", () => {
  // Envoy gives every route of a lookup the stream's random value: 30 % then 60 % is 30/30/40, not 30/42/28
  const rt = table(oneHost([
    { name: "a", match: fraction(30, "a"), route: { cluster: "a" } },
    { name: "b", match: fraction(60, "b"), route: { cluster: "b" } },
    { name: "c", match: { prefix: "/" }, route: { cluster: "c" } },
  ]));
  const p = picks(rt, 10_000);
  assert.ok(Math.abs(p.get("a")! - 3000) < 300, `a ~30 %: ${[...p]}`);
  assert.ok(Math.abs(p.get("b")! - 3000) < 300, `b ~30 %: ${[...p]}`);
  assert.ok(Math.abs(p.get("c")! - 4000) < 300, `c ~40 %: ${[...p]}`);
});

Deno.test("route runtime_fraction: schema", () => {
  assert.throws(
    () =>
      table(
        oneHost([{
          match: { prefix: "/", runtime_fraction: { default_value: { numerator: 1 }, bogus: 1 } },
          route: { cluster: "a" },
        }]),
      ),
    /bogus/,
  );
});

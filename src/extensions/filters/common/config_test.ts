import assert from "node:assert/strict";
import { setRuntime } from "../../../runtime/current.ts";
import { createEntry, EMPTY_SNAPSHOT, RuntimeSnapshot } from "../../../runtime/snapshot.ts";
import { RuntimeFlag, RuntimeFraction } from "./config.ts";

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

Deno.test("RuntimeFraction: the runtime's value of runtime_key, else default_value, else the fallback", () => {
  const f = new RuntimeFraction({
    default_value: { numerator: 100, denominator: "HUNDRED" },
    runtime_key: "k",
  }, 0);
  assert.equal(f.enabled(), true);
  withRuntime({ k: "0" }, () => assert.equal(f.enabled(), false));
  withRuntime({ k: "numerator: 1\ndenominator: MILLION" }, () => {
    let hits = 0;
    for (let i = 0; i < 1000; i++) if (f.enabled()) hits++;
    assert.ok(hits < 5, `about 1 in a million: ${hits}`);
  });
  withRuntime({ other: "0" }, () => assert.equal(f.enabled(), true));
  assert.equal(new RuntimeFraction(undefined, 0).enabled(), false);
  assert.equal(new RuntimeFraction(undefined, 100).enabled(), true);
  const noKey = new RuntimeFraction({ default_value: { numerator: 0, denominator: "HUNDRED" } }, 100);
  withRuntime({ "": "100" }, () => assert.equal(noKey.enabled(), false));
});

Deno.test("RuntimeFlag: the runtime's boolean, else default_value", () => {
  const f = RuntimeFlag.of({ default_value: true, runtime_key: "on" }, false);
  assert.equal(f.enabled(), true);
  withRuntime({ on: "false" }, () => assert.equal(f.enabled(), false));
  withRuntime({ on: "0" }, () => assert.equal(f.enabled(), false));
  withRuntime({ on: "hello" }, () => assert.equal(f.enabled(), true));
  assert.equal(RuntimeFlag.of(undefined, true).enabled(), true);
});

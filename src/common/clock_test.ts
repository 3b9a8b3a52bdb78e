import assert from "node:assert/strict";
import { systemClock } from "./clock.ts";

Deno.test("systemClock.monotonic: one reading per event-loop turn, a fresh one in the next", async () => {
  const a = systemClock.monotonic();
  // a millisecond of work within the same turn
  const until = performance.now() + 1;
  while (performance.now() < until) { /* spin */ }
  assert.equal(systemClock.monotonic(), a);
  await new Promise((r) => setTimeout(r, 2));
  const b = systemClock.monotonic();
  assert.ok(b >= a + 2, `${a} -> ${b}`);
  // and the microtask that forgets the reading runs before later continuations of the same turn
  await Promise.resolve();
  const until2 = performance.now() + 1;
  while (performance.now() < until2) { /* spin */ }
  assert.ok(systemClock.monotonic() > b, "a reading after a microtask boundary is fresh");
});

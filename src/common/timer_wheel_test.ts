import assert from "node:assert/strict";
import { TimerEntry, TimerWheel } from "./timer_wheel.ts";

Deno.test("timer wheel fires armed entries after their deadline and not disarmed ones", async () => {
  const wheel = new TimerWheel(undefined, 5);
  const fired: number[] = [];
  const a = new TimerEntry({ onTimeout: (k) => fired.push(k) });
  const b = new TimerEntry({ onTimeout: (k) => fired.push(k) });
  const c = new TimerEntry({ onTimeout: (k) => fired.push(k) });
  wheel.arm(a, 20, 1);
  wheel.arm(b, 40, 2);
  wheel.arm(c, 30, 3);
  wheel.disarm(c);
  assert.equal(wheel.size, 2);
  await new Promise((r) => setTimeout(r, 15));
  assert.deepEqual(fired, []);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(fired, [1, 2]);
  assert.equal(wheel.size, 0);
  // re-arming works and a long deadline beyond one wheel turn is honoured
  wheel.arm(a, 5 * 512 + 20, 7);
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(fired, [1, 2]);
  wheel.disarm(a);
  wheel.close();
});

Deno.test("timer wheel armed while running never fires early and now() tracks ticks", async () => {
  const wheel = new TimerWheel(undefined, 5);
  const keep = new TimerEntry({ onTimeout: () => {} });
  wheel.arm(keep, 10_000);
  await new Promise((r) => setTimeout(r, 30));
  const t0 = wheel.now();
  assert.ok(Math.abs(t0 - performance.now()) < 25, "now() is the last tick while running");
  let firedAt = 0;
  const armedAt = performance.now();
  const e = new TimerEntry({ onTimeout: () => firedAt = performance.now() });
  wheel.arm(e, 20);
  await new Promise((r) => setTimeout(r, 80));
  assert.ok(firedAt > 0, "fired");
  assert.ok(firedAt - armedAt >= 20, `fired after ${firedAt - armedAt} ms`);
  wheel.disarm(keep);
  assert.equal(wheel.size, 0);
  wheel.close();
});

import assert from "node:assert/strict";
import { ManualClock } from "../../../common/clock.ts";
import { SharedArena } from "../../../common/shared_arena.ts";
import { SharedTokenBucket } from "./token_bucket.ts";

const SPEC = { maxTokens: 5, tokensPerFill: 2, fillIntervalMs: 1000 };

function take(b: SharedTokenBucket, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (b.consume()) ok++;
  return ok;
}

Deno.test("shared token bucket", async (t) => {
  await t.step("starts full, refills tokens_per_fill per interval, never above max_tokens", () => {
    const clock = new ManualClock(1_700_000_000_000);
    const b = new SharedTokenBucket(SharedArena.create({ bytes: 1 << 16, capacity: 64 }), "a", SPEC, clock);
    assert.equal(take(b, 10), 5);
    clock.advance(999);
    assert.equal(b.consume(), false);
    clock.advance(1);
    assert.equal(b.remaining(), 2);
    assert.equal(take(b, 10), 2);
    clock.advance(2500); // two more interval boundaries: 4 tokens
    assert.equal(take(b, 10), 4);
    clock.advance(60_000); // many intervals: capped at max
    assert.equal(b.remaining(), 5);
    assert.equal(b.msUntilFill(), 500);
  });

  await t.step("a clock going back neither refills nor breaks the bucket", () => {
    const clock = new ManualClock(1_700_000_000_000);
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const b = new SharedTokenBucket(arena, "back", SPEC, clock);
    assert.equal(take(b, 5), 5);
    const earlier = new SharedTokenBucket(arena, "back", SPEC, new ManualClock(1_699_000_000_000));
    assert.equal(earlier.consume(), false);
    clock.advance(1000);
    assert.equal(take(b, 10), 2);
  });

  await t.step("two attachments of one arena share one bucket; other keys and specs are separate", () => {
    const clock = new ManualClock(1_700_000_000_000);
    const main = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const other = SharedArena.attach(main.buffer);
    const b1 = new SharedTokenBucket(main, "route/1", SPEC, clock);
    const b2 = new SharedTokenBucket(other, "route/1", SPEC, clock);
    let ok = 0;
    for (let i = 0; i < 20; i++) ok += (i % 2 ? b1 : b2).consume() ? 1 : 0;
    assert.equal(ok, 5);
    const b3 = new SharedTokenBucket(other, "route/2", SPEC, clock);
    assert.equal(take(b3, 10), 5);
    const b4 = new SharedTokenBucket(other, "route/1", { ...SPEC, maxTokens: 7 }, clock);
    assert.equal(take(b4, 10), 7);
    clock.advance(1000);
    assert.equal(take(b1, 1) + take(b2, 10), 2);
  });

  await t.step("workers racing on one bucket never hand out more than it holds", async () => {
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const max = 200_000;
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const spec = { maxTokens: max, tokensPerFill: 1, fillIntervalMs: 3_600_000 };
    const mod = new URL("./token_bucket.ts", import.meta.url).href;
    const arenaMod = new URL("../../../common/shared_arena.ts", import.meta.url).href;
    const clockMod = new URL("../../../common/clock.ts", import.meta.url).href;
    const src = `
      import { SharedTokenBucket } from "${mod}";
      import { SharedArena } from "${arenaMod}";
      import { systemClock } from "${clockMod}";
      self.onmessage = (e) => {
        const b = new SharedTokenBucket(SharedArena.attach(e.data.buffer), "race", e.data.spec, systemClock);
        const gate = new Int32Array(e.data.gate);
        Atomics.add(gate, 0, 1);
        while (Atomics.load(gate, 1) === 0) { /* wait for the start */ }
        let ok = 0;
        for (let i = 0; i < e.data.tries; i++) if (b.consume()) ok++;
        self.postMessage(ok);
      };`;
    const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
    const workers = [0, 1, 2].map(() => new Worker(url, { type: "module" }));
    try {
      const counts = await Promise.all(
        workers.map((w) =>
          new Promise<number>((resolve, reject) => {
            w.onmessage = (e) => resolve(e.data as number);
            w.onerror = (e) => reject(e);
            w.postMessage({ buffer: arena.buffer, spec, tries: max, gate: gate.buffer });
          })
        ).concat((async () => {
          while (Atomics.load(gate, 0) < 3) await new Promise((r) => setTimeout(r, 5));
          Atomics.store(gate, 1, 1);
          return 0;
        })()),
      );
      assert.equal(counts.reduce((a, b) => a + b, 0), max);
      assert.ok(counts.every((c) => c < max), `one worker took everything: ${counts}`);
    } finally {
      for (const w of workers) w.terminate();
      URL.revokeObjectURL(url);
    }
  });
});

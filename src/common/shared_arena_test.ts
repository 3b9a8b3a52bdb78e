import assert from "node:assert/strict";
import { SharedArena } from "./shared_arena.ts";

Deno.test("SharedArena", async (t) => {
  await t.step("same key gives the same zeroed memory, other keys do not overlap", () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    const a = arena.slot("cb/web/default", 4);
    assert.deepEqual([...a], [0, 0, 0, 0]);
    a[2] = 7;
    assert.equal(arena.slot("cb/web/default", 4)[2], 7);
    const b = arena.slot("cb/api/default", 3);
    b.fill(9);
    assert.deepEqual([...a], [0, 0, 7, 0]);
    assert.equal(a.byteOffset % 8, 0);
    assert.equal(b.byteOffset % 8, 0);
  });

  await t.step("a second attachment (another thread) finds slots by key", () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    arena.slot("x", 2)[1] = 42;
    const other = SharedArena.attach(arena.buffer);
    assert.equal(other.slot("x", 2)[1], 42);
    const big = other.slot64("ts", 1);
    Atomics.store(big, 0, 1_700_000_000_000n);
    assert.equal(Atomics.load(arena.slot64("ts", 1), 0), 1_700_000_000_000n);
  });

  await t.step("length mismatch and exhaustion are errors", () => {
    const arena = SharedArena.create({ bytes: 4096, capacity: 8 });
    arena.slot("k", 2);
    assert.throws(() => SharedArena.attach(arena.buffer).slot("k", 3), /another length/);
    assert.throws(() => arena.slot("huge", 4096), /full/);
    for (let i = 0; i < 7; i++) arena.slot(`k${i}`, 1);
    assert.throws(() => arena.slot("one-too-many", 1), /table full/);
  });

  await t.step("workers share slots and atomic counts add up", async () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    const counter = arena.slot("count", 1);
    const src = `self.onmessage = (e) => {
      const { buffer, offset } = e.data;
      const c = new Int32Array(buffer, offset, 1);
      for (let i = 0; i < 100000; i++) Atomics.add(c, 0, 1);
      self.postMessage("done");
    };`;
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    const workers = [new Worker(url, { type: "module" }), new Worker(url, { type: "module" })];
    await Promise.all(workers.map((w) =>
      new Promise<void>((resolve) => {
        w.onmessage = () => {
          w.terminate();
          resolve();
        };
        w.postMessage({ buffer: arena.buffer, offset: counter.byteOffset });
      })
    ));
    URL.revokeObjectURL(url);
    assert.equal(Atomics.load(counter, 0), 200000);
  });
});

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
    assert.throws(() => arena.slot("empty", 0), /at least one/);
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

  await t.step("the last release frees a slot: its memory comes back zeroed for another key", () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    const other = SharedArena.attach(arena.buffer);
    const a = arena.slot("host/web/10.0.0.1:80", 4);
    a.fill(5);
    const used = arena.usedBytes();
    const seen = other.slot("host/web/10.0.0.1:80", 4);
    assert.equal(seen[0], 5);
    arena.release("host/web/10.0.0.1:80");
    assert.equal(arena.liveKeys(), 1, "the other thread still holds it");
    assert.equal(seen[3], 5);
    other.release("host/web/10.0.0.1:80");
    assert.equal(arena.liveKeys(), 0);
    assert.equal(arena.usedBytes(), used - 16);
    const b = arena.slot("host/web/10.0.0.2:80", 4);
    assert.equal(b.byteOffset, a.byteOffset, "the freed block is reused");
    assert.deepEqual([...b], [0, 0, 0, 0]);
    arena.release("never-taken"); // no-op
    // two users in one thread: the slot lives until both gave it back
    const c1 = arena.slot("twice", 2);
    arena.slot("twice", 2);
    arena.release("twice");
    assert.equal(arena.liveKeys(), 2);
    c1[0] = 3;
    arena.release("twice");
    assert.equal(arena.liveKeys(), 1);
  });

  await t.step("churning keys never fills a small table", () => {
    const arena = SharedArena.create({ bytes: 16 * 1024, capacity: 16 });
    arena.slot("pinned", 2)[0] = 99;
    for (let i = 0; i < 20_000; i++) {
      const k = `host/c/${i}`;
      arena.slot(k, 4)[0] = i;
      if (i >= 8) arena.release(`host/c/${i - 8}`);
    }
    assert.equal(arena.liveKeys(), 9);
    assert.equal(arena.slot("pinned", 2)[0], 99);
    assert.equal(arena.slot("host/c/19999", 4)[0], 19999);
  });

  await t.step("workers churning shared keys never reuse memory someone still holds", async () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 128 });
    const pinned: Int32Array[] = [];
    for (let i = 0; i < 8; i++) pinned.push(arena.slot(`churn/${i}`, 4).fill(0x7777, 1));
    const rounds = 5000;
    const workers = [0, 1, 2].map(() =>
      new Worker(new URL("./shared_arena_churn_worker.ts", import.meta.url), { type: "module" })
    );
    const results = await Promise.all(
      workers.map((w, id) =>
        new Promise<{ ok: boolean; error?: string }>((resolve) => {
          w.onmessage = (e) => {
            w.terminate();
            resolve(e.data);
          };
          w.postMessage({ buffer: arena.buffer, id, rounds });
        })
      ),
    );
    assert.deepEqual(results, [{ ok: true }, { ok: true }, { ok: true }]);
    // keys the main thread held kept their memory (never zeroed under it) and saw every increment
    let counted = 0;
    for (const p of pinned) {
      assert.deepEqual([...p.subarray(1)], [0x7777, 0x7777, 0x7777]);
      counted += p[0];
    }
    for (let id = 0; id < 3; id++) assert.equal(arena.slot(`own/${id}`, 4)[1], rounds);
    // churn/8..15 were freed whenever no worker held them; churn/0..7 collected their share exactly
    let expected = 0;
    for (let id = 0; id < 3; id++) for (let r = 0; r < rounds; r++) if ((r * 7 + id) % 16 < 8) expected++;
    assert.equal(counted, expected);
    assert.equal(arena.liveKeys(), 8 + 3);
  });
});

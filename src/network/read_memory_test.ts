import assert from "node:assert/strict";
import { BufferPool, SlotPool } from "./read_memory.ts";

Deno.test("SlotPool: disjoint slots of shared slabs, reused after give, a new slab only when all are taken", () => {
  const pool = new SlotPool(512, 4);
  const taken = [pool.take(), pool.take(), pool.take(), pool.take()];
  assert.equal(pool.slabs, 1);
  assert.ok(taken.every((s) => s.length === 512 && s.buffer === taken[0].buffer));
  const offsets = taken.map((s) => s.byteOffset).sort((a, b) => a - b);
  assert.deepEqual(offsets, [0, 512, 1024, 1536]);
  // writes through one slot never reach another
  taken.forEach((s, i) => s.fill(i + 1));
  taken.forEach((s, i) => assert.ok(s.every((b) => b === i + 1)));
  const fifth = pool.take();
  assert.equal(pool.slabs, 2);
  assert.notEqual(fifth.buffer, taken[0].buffer);
  pool.give(taken[2]);
  assert.equal(pool.take(), taken[2]);
  assert.equal(pool.free, 3); // the second slab's other three
});

Deno.test("BufferPool: keeps its own size up to maxFree, never views or other sizes", () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take();
  const b = pool.take();
  assert.equal(a.length, 1024);
  assert.notEqual(a, b);
  pool.give(a);
  pool.give(new Uint8Array(2048)); // another size
  pool.give(new Uint8Array(4096).subarray(0, 1024)); // a view of a larger buffer
  assert.equal(pool.free, 1);
  pool.give(b);
  pool.give(new Uint8Array(1024)); // beyond maxFree
  assert.equal(pool.free, 2);
  assert.equal(pool.take(), b);
  assert.equal(pool.take(), a);
  assert.notEqual(pool.take(), a);
});

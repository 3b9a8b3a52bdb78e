import assert from "node:assert/strict";
import { allocBytes, ARENA_MAX_BYTES, joinBytes } from "./byte_arena.ts";

Deno.test("byte arena", async (t) => {
  await t.step("buffers never overlap and keep their bytes", () => {
    const bufs: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) {
      const b = allocBytes(1 + (i % 300));
      b.fill(i & 0xff);
      bufs.push(b);
    }
    for (let i = 0; i < bufs.length; i++) {
      assert.equal(bufs[i].length, 1 + (i % 300));
      assert.ok(bufs[i].every((x) => x === (i & 0xff)), `buffer ${i} was overwritten`);
    }
  });
  await t.step("large buffers get their own memory", () => {
    const big = allocBytes(ARENA_MAX_BYTES + 1);
    assert.equal(big.length, ARENA_MAX_BYTES + 1);
    assert.equal(big.byteOffset, 0);
    assert.equal(big.buffer.byteLength, ARENA_MAX_BYTES + 1);
  });
  await t.step("joinBytes", () => {
    const j = joinBytes(new Uint8Array([1, 2]), new Uint8Array([3]));
    assert.deepEqual([...j], [1, 2, 3]);
  });
});

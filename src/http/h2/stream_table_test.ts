import assert from "node:assert/strict";
import { StreamTable } from "./stream_table.ts";
import type { H2Stream } from "./stream.ts";

/** A stand-in stream: the table only stores and returns it. */
function fake(id: number): H2Stream {
  return { id } as unknown as H2Stream;
}

Deno.test("StreamTable: the same answers as a Map through random opens and closes", () => {
  const table = new StreamTable();
  const ref = new Map<number, H2Stream>();
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let next = 1;
  const open: number[] = [];
  for (let step = 0; step < 200_000; step++) {
    const r = rand(10);
    if (r < 5 || open.length === 0) {
      // open a stream (client ids: odd, increasing), sometimes many at once
      const st = fake(next);
      table.set(next, st);
      ref.set(next, st);
      open.push(next);
      next += 2;
    } else if (r < 9) {
      // close one, not necessarily the oldest
      const i = rand(open.length);
      const id = open[i];
      open[i] = open[open.length - 1];
      open.pop();
      assert.equal(table.delete(id), true);
      ref.delete(id);
    } else {
      // look up open, closed and never-opened ids
      const id = rand(next + 10);
      assert.equal(table.get(id), ref.get(id));
    }
    assert.equal(table.size, ref.size);
  }
  for (const [id, st] of ref) assert.equal(table.get(id), st);
  assert.deepEqual(
    table.values().map((s) => s.id),
    [...ref.keys()].sort((a, b) => a - b),
  );
  assert.equal(table.delete(next + 2), false);
});

Deno.test("StreamTable: grows past its first capacity and shrinks back to empty", () => {
  const table = new StreamTable();
  for (let id = 2; id <= 2000; id += 2) table.set(id, fake(id));
  assert.equal(table.size, 1000);
  for (let id = 2; id <= 2000; id += 2) assert.equal(table.get(id)?.id, id);
  table.set(2, fake(2)); // replacing keeps the size
  assert.equal(table.size, 1000);
  for (let id = 2000; id >= 2; id -= 2) assert.equal(table.delete(id), true);
  assert.equal(table.size, 0);
  assert.deepEqual(table.values(), []);
  assert.equal(table.get(2), undefined);
});

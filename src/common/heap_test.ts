import assert from "node:assert/strict";
import { getHeapSpaceStatistics } from "node:v8";
import { compactHeap, CompactionScheduler } from "./heap.ts";

function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? -1;
}

Deno.test("compactHeap gives the grown young generation back", () => {
  // survivors of many scavenges make V8 grow the young generation (as loading a config does)
  const keep: unknown[] = [];
  for (let i = 0; i < 400_000; i++) {
    keep.push({ i, s: `v${i}` });
    if (keep.length > 50_000) keep.length = 0;
  }
  const grown = newSpaceBytes();
  assert.ok(grown > 2 * 1024 * 1024, `expected a grown young generation, got ${grown}`);
  assert.equal(compactHeap(), true);
  const after = newSpaceBytes();
  assert.ok(after < grown / 2, `young generation ${grown} -> ${after}`);
  keep.length = 0;
  assert.equal(compactHeap(), true, "the collector stays reachable for later config loads");
});

Deno.test("CompactionScheduler: one compaction after a burst goes quiet, none while updates keep coming", async () => {
  let runs = 0;
  const s = new CompactionScheduler(40, 0, () => {
    runs++;
    return true;
  });
  for (let i = 0; i < 5; i++) {
    s.note();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(runs, 0, "still busy: no pause yet");
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(runs, 1);
  s.note();
  s.close();
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(runs, 1, "closed: nothing left to run");
});

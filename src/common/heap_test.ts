import assert from "node:assert/strict";
import { getHeapSpaceStatistics } from "node:v8";
import {
  collectGarbage,
  compactHeap,
  CompactionScheduler,
  IdleMemoryReducer,
  trimNativeHeap,
} from "./heap.ts";
import { readOwnProcFile } from "./code_pages.ts";
import { libc } from "./libc.ts";

// libc is opened once per isolate and kept (the idle reducer trims the C heap through it): open it before any
// test, so the sanitizer does not count the kept library as one test's leak
libc();

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

Deno.test("IdleMemoryReducer: collects once a grown heap goes quiet, not while it allocates, not when small", () => {
  let s = { heapTotal: 20e6, heapUsed: 15e6, external: 1e6 };
  let runs = 0;
  const r = new IdleMemoryReducer({
    intervalMs: 3_600_000,
    growthBytes: 4e6,
    quietBytes: 0.5e6,
    sample: () => s,
    compact: () => {
      runs++;
      s = { heapTotal: 21e6, heapUsed: 16e6, external: 1e6 };
      return true;
    },
  });
  try {
    // a burst: the heap grows and keeps allocating
    s = { heapTotal: 40e6, heapUsed: 30e6, external: 3e6 };
    r.tick();
    s = { heapTotal: 45e6, heapUsed: 38e6, external: 3e6 };
    r.tick();
    assert.equal(runs, 0, "busy: no pause");
    // the burst is over: heapUsed stands still
    r.tick();
    assert.equal(runs, 1);
    // that collection freed a lot: one more at the next quiet sample, which frees nothing, so none after it
    r.tick();
    assert.equal(runs, 2);
    assert.equal(r.runs, 2);
    // quiet and small: nothing more
    r.tick();
    r.tick();
    assert.equal(runs, 2);
    // a little growth (below growthBytes) is left alone
    s = { heapTotal: 23e6, heapUsed: 17e6, external: 1e6 };
    r.tick();
    r.tick();
    assert.equal(runs, 2);
  } finally {
    r.close();
  }
});

Deno.test("IdleMemoryReducer: a scavenge that shrinks the heap lowers the baseline; close leaves no timer", async () => {
  let s = { heapTotal: 30e6, heapUsed: 20e6, external: 0 };
  let runs = 0;
  const r = new IdleMemoryReducer({
    intervalMs: 5,
    growthBytes: 4e6,
    sample: () => s,
    compact: () => {
      runs++;
      return true;
    },
  });
  s = { heapTotal: 25e6, heapUsed: 20e6, external: 0 }; // V8 shrank on its own
  await new Promise((res) => setTimeout(res, 30));
  s = { heapTotal: 28e6, heapUsed: 20e6, external: 0 }; // +3 MB over the new baseline: below the threshold
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(runs, 0);
  s = { heapTotal: 30e6, heapUsed: 20e6, external: 0 }; // +5 MB: collected
  await new Promise((res) => setTimeout(res, 30));
  assert.ok(runs >= 1);
  r.close();
});

Deno.test("IdleMemoryReducer on the real heap: garbage of a burst is given back once quiet", () => {
  const r = new IdleMemoryReducer({ intervalMs: 3_600_000, growthBytes: 1024 * 1024 });
  try {
    let keep: unknown[] = [];
    for (let i = 0; i < 300_000; i++) keep.push({ i, s: `v${i}`, b: new Uint8Array(16) });
    keep = [];
    r.tick(); // the burst's allocation shows as movement
    r.tick(); // quiet now
    assert.ok(r.runs >= 1, "a collection after the burst");
    assert.equal(keep.length, 0);
  } finally {
    r.close();
  }
});

Deno.test("trimNativeHeap gives back the C-heap pages a burst of small buffers left", async () => {
  const anonKiB = () => Number(/RssAnon:\s+(\d+)/.exec(readOwnProcFile("status") ?? "")?.[1] ?? NaN);
  let burst: Uint8Array[] = [];
  const kept: Uint8Array[] = [];
  // 40 MB of 2 KiB backing stores (glibc's heap, not mmap), every 16th kept: most pages end up empty but are
  // interleaved with live ones, so free() alone returns nothing
  for (let i = 0; i < 20_000; i++) {
    const b = new Uint8Array(2048);
    b[0] = 1;
    (i % 16 === 0 ? kept : burst).push(b);
  }
  burst = [];
  assert.ok(collectGarbage());
  await new Promise((res) => setTimeout(res, 50)); // V8 frees backing stores on a sweeper task
  const before = anonKiB();
  assert.ok(trimNativeHeap(), "glibc's malloc_trim through --allow-ffi");
  const after = anonKiB();
  assert.ok(before - after > 8 * 1024, `RssAnon ${before} -> ${after} KiB`);
  assert.equal(kept.length, 1250);
});

import assert from "node:assert/strict";
import { StatsStore } from "../stats/store.ts";
import { BufferedLineWriter, type ByteSink, reopenAccessLogs } from "./writer.ts";

/** A sink that records writes and can be held to observe coalescing. */
class SlowSink implements ByteSink {
  writes: string[] = [];
  #release: (() => void) | undefined;
  hold = false;
  fail = false;
  async write(p: Uint8Array): Promise<number> {
    if (this.hold) await new Promise<void>((r) => this.#release = r);
    if (this.fail) throw new Error("Disk full");
    // Accept at most 5 bytes per call to exercise partial writes.
    const n = Math.min(5, p.length);
    this.writes.push(new TextDecoder().decode(p.subarray(0, n)));
    return n;
  }
  release(): void {
    this.hold = false;
    this.#release?.();
  }
}

Deno.test("BufferedLineWriter", async (t) => {
  await t.step("coalesces lines while a write is in flight, handles partial writes", async () => {
    const stats = new StatsStore();
    const sink = new SlowSink();
    const w = new BufferedLineWriter(sink, { stats, name: "t" });
    sink.hold = true;
    w.write("a\n");
    await new Promise((r) => setTimeout(r, 0));
    w.write("bb\n");
    w.write("ccc\n");
    sink.release();
    await w.flush();
    assert.equal(sink.writes.join(""), "a\nbb\nccc\n");
    assert.equal(sink.writes[0], "a\n");
    assert.equal(stats.counter("filesystem.write_buffered").value, 3);
    assert.equal(stats.counter("filesystem.write_completed").value, 2);
    assert.equal(stats.gauge("filesystem.write_total_buffered").value, 0);
    await w.close();
  });
  await t.step("drops lines over the bound and after close", async () => {
    const stats = new StatsStore();
    const sink = new SlowSink();
    const w = new BufferedLineWriter(sink, { stats, name: "t", maxBufferBytes: 6 });
    w.write("1234\n");
    w.write("5678\n");
    await w.close();
    w.write("late\n");
    assert.equal(sink.writes.join(""), "1234\n");
    assert.equal(stats.counter("filesystem.write_dropped").value, 2);
  });
  await t.step("a failing sink is counted, not thrown", async () => {
    const stats = new StatsStore();
    const sink = new SlowSink();
    sink.fail = true;
    const w = new BufferedLineWriter(sink, { stats, name: "t" });
    w.write("x\n");
    await w.flush();
    assert.equal(stats.counter("filesystem.write_failed").value, 1);
  });
});

Deno.test("reopenAccessLogs reaches every open reopenable writer of the thread, not closed ones", async () => {
  const reopened: string[] = [];
  const sink = (name: string) => ({
    write: (p: Uint8Array) => Promise.resolve(p.length),
    reopen: () => reopened.push(name),
  });
  const stats = new StatsStore();
  const a = new BufferedLineWriter(sink("a"), { stats, name: "a" });
  const b = new BufferedLineWriter(sink("b"), { stats, name: "b" });
  new BufferedLineWriter({ write: (p) => Promise.resolve(p.length) }, { stats, name: "stdout" });
  await b.close();
  reopenAccessLogs();
  assert.deepEqual(reopened, ["a"]);
  await a.close();
});

import assert from "node:assert/strict";
import { randomHex64, SpanBatcher, type SpanBuffer } from "./batcher.ts";
import { JsonBytes } from "./json_bytes.ts";

Deno.test("SpanBatcher: min_flush_spans, one report in flight, bounded buffer, close flushes", async () => {
  const sent: number[][] = [];
  let release: () => void = () => {};
  let dropped = 0;
  const b = new SpanBatcher<number>({
    minFlushSpans: 3,
    flushIntervalMs: 60_000,
    minGapMs: 0,
    maxPending: 5,
    send: (batch) => {
      sent.push(batch);
      return new Promise<void>((r) => release = r);
    },
    onDropped: (n) => dropped += n,
  });
  for (let i = 0; i < 3; i++) b.add(i);
  assert.deepEqual(sent, [[0, 1, 2]]);
  // the report is in flight: later spans wait, the buffer is bounded
  for (let i = 3; i < 9; i++) b.add(i);
  assert.equal(sent.length, 1);
  assert.equal(dropped, 5);
  assert.equal(b.pending, 1);
  b.add(9);
  b.add(10);
  release();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(sent[1], [8, 9, 10]);
  b.add(11);
  const closing = b.close();
  // the second report ends; close sends what waited
  release();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(sent[2], [11]);
  release();
  await closing;
});

Deno.test("SpanBatcher with a buffer of its own: spans encoded as they are added, the batch is its text", async () => {
  const sent: [string, number][] = [];
  let text = "";
  const buffer: SpanBuffer<number, string> = {
    get length() {
      return text === "" ? 0 : text.split(",").length;
    },
    push: (n) => text += text === "" ? `${n}` : `,${n}`,
    take: () => {
      const t = text;
      text = "";
      return t;
    },
    clear: () => text = "",
  };
  const b = new SpanBatcher<number, string>({
    minFlushSpans: 2,
    flushIntervalMs: 60_000,
    minGapMs: 0,
    maxPending: 3,
    buffer,
    send: (batch, spans) => {
      sent.push([batch, spans]);
      return Promise.resolve();
    },
  });
  b.add(1);
  b.add(2);
  assert.deepEqual(sent, [["1,2", 2]]);
  b.add(3);
  await b.close();
  assert.deepEqual(sent, [["1,2", 2], ["3", 1]]);
});

Deno.test("JsonBytes: ASCII copied, escapes and non-ASCII through JSON.stringify", () => {
  const w = new JsonBytes(4);
  w.raw("[");
  w.str("plain");
  w.raw(",");
  w.str('q"uote\\\n');
  w.raw(",");
  w.str("héllo ✓");
  w.raw(",");
  w.num(12.5);
  w.raw("]");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(w.bytes())), ["plain", 'q"uote\\\n', "héllo ✓", 12.5]);
  assert.match(randomHex64(), /^[0-9a-f]{16}$/);
});

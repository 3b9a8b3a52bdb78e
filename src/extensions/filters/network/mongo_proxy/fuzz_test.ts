/**
 * Fuzzing the mongo_proxy filter with a seeded PRNG: random, truncated, mutated and oversized frames never throw,
 * a connection counts at most one decoding error and then stops decoding, and the memory held for an incomplete
 * message stays within the message bound and twice the bytes received.
 */
import assert from "node:assert/strict";
import { seededRandom } from "../../../../upstream/lb/lb.ts";
import { MongoDecoder } from "./codec.ts";
import {
  concat,
  frame,
  harness,
  opCommand,
  opCompressed,
  opGetMore,
  opInsert,
  opKillCursors,
  opMsg,
  opQuery,
  opReply,
} from "./test_frames.ts";

/** The project's seeded PRNG (mulberry32). */
const prng = seededRandom;

const MAX = 64 * 1024;

const VALID: Uint8Array[] = [
  opMsg(1, { find: "users", filter: { _id: 1 }, comment: '{"callingFunction":"f"}', $db: "app" }),
  opMsg(2, { insert: "users", $db: "app" }, {
    sequences: [{ id: "documents", docs: [{ a: 1 }, { b: [1, 2] }] }],
  }),
  opMsg(3, { ok: 1, cursor: { id: 0n, firstBatch: [] } }, { responseTo: 1, checksum: true }),
  opQuery(4, "admin.$cmd", { isMaster: 1, client: { app: "x" } }),
  opQuery(5, "app.users", { $query: { _id: { $in: [1] } }, $comment: "{}" }, { fields: { a: 1 } }),
  opReply(6, 4, [{ ok: 1 }, { n: 2 }], { cursorId: 9n }),
  opGetMore(7, "app.users", 1, 9n),
  opInsert(8, "app.users", [{ x: "y" }]),
  opKillCursors(9, [9n]),
  opCommand(10, "app", "ping", {}, { ping: 1 }),
  opCompressed(opMsg(11, { ping: 1, $db: "a" })),
  opCompressed(opMsg(12, { ping: 1, $db: "a" }), 2),
];

function randomBytes(r: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Feeds `bytes` in random pieces to both directions of a fresh filter; returns the harness. */
function feed(r: () => number, bytes: Uint8Array, h = harness({}, { maxMessageBytes: MAX })) {
  const dir = r() < 0.5;
  let received = 0;
  for (let o = 0; o < bytes.length;) {
    const n = 1 + Math.floor(r() * Math.min(bytes.length - o, r() < 0.2 ? 4 : 3000));
    const piece = bytes.subarray(o, o + n);
    if (dir) h.filter.onData(piece, false);
    else h.filter.onWrite(piece, false);
    received += n;
    o += n;
    // memory held: at most the bound, and at most twice what arrived (the buffer grows by doubling)
    const held = h.filter.bufferedBytes;
    assert.ok(held <= MAX && held <= Math.max(64, 2 * received), `held ${held} after ${received}`);
  }
  h.filter.onData(new Uint8Array(0), true);
  h.filter.onClose();
  assert.ok((h.counter("decoding_error") ?? 0) <= 1);
  assert.equal(h.stats.gauges.get("mongo.p.op_query_active")!.value, 0);
  return h;
}

Deno.test("mongo_proxy fuzz: valid frames in random splits decode without an error", () => {
  const r = prng(1);
  for (let c = 0; c < 500; c++) {
    const picks = Array.from(
      { length: 1 + Math.floor(r() * 8) },
      () => VALID[Math.floor(r() * VALID.length)],
    );
    const h = feed(r, concat(...picks));
    assert.equal(h.counter("decoding_error"), 0, `case ${c}`);
  }
});

Deno.test("mongo_proxy fuzz: random bytes, mutated and truncated frames never throw", () => {
  const r = prng(2);
  let errors = 0;
  for (let c = 0; c < 4000; c++) {
    const kind = c % 4;
    let bytes: Uint8Array;
    if (kind === 0) bytes = randomBytes(r, Math.floor(r() * 300));
    else if (kind === 1) {
      // a valid frame with a few bytes changed, followed by a valid frame
      const f = VALID[Math.floor(r() * VALID.length)].slice();
      for (let i = 1 + Math.floor(r() * 4); i > 0; i--) f[Math.floor(r() * f.length)] = Math.floor(r() * 256);
      bytes = concat(f, VALID[0]);
    } else if (kind === 2) {
      // a frame cut short then another frame: the second is read as the rest of the first
      const f = VALID[Math.floor(r() * VALID.length)];
      bytes = concat(f.subarray(0, Math.floor(r() * f.length)), VALID[Math.floor(r() * VALID.length)]);
    } else {
      // a valid header claiming a random length around the bound, then random bytes
      const len = Math.floor(r() * MAX * 2);
      bytes = concat(frame(2013, 1, 0).subarray(4, 16), randomBytes(r, Math.floor(r() * 2000)));
      bytes = concat(new Uint8Array(new Int32Array([len]).buffer), bytes);
    }
    const h = feed(r, bytes);
    errors += h.counter("decoding_error") ?? 0;
  }
  assert.ok(errors > 2000, `most malformed cases count a decoding error (${errors})`);
});

Deno.test("mongo_proxy fuzz: oversized and undersized lengths are decoding errors at once, nothing held", () => {
  const r = prng(3);
  for (let c = 0; c < 1000; c++) {
    const len = r() < 0.5 ? MAX + 1 + Math.floor(r() * 1e9) : -Math.floor(r() * 1e9) + (r() < 0.5 ? 15 : 0);
    const h = harness({}, { maxMessageBytes: MAX });
    const head = new Uint8Array(new Int32Array([Math.min(len, 15)]).buffer);
    if (len > MAX) head.set(new Uint8Array(new Int32Array([len]).buffer));
    h.filter.onData(concat(head, randomBytes(r, Math.floor(r() * 100))), false);
    assert.equal(h.counter("decoding_error"), 1, `length ${len}`);
    assert.equal(h.filter.bufferedBytes, 0);
    h.filter.onClose();
  }
});

Deno.test("mongo_proxy fuzz: a decoder fed a huge message in pieces holds at most its length", () => {
  const r = prng(4);
  const d = new MongoDecoder({ onMessage: () => {} }, 1 << 20);
  const len = (1 << 20) - 7;
  const head = frame(2013, 1, 0);
  new DataView(head.buffer).setInt32(0, len, true);
  let fed = 0;
  d.onData(head);
  fed += head.length;
  while (fed < len - 5000) {
    const n = 1 + Math.floor(r() * 5000);
    d.onData(new Uint8Array(n));
    fed += n;
    assert.ok(d.bufferedBytes <= len && d.bufferedBytes <= 2 * fed);
  }
});

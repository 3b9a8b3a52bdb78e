/** The Mongo decoder: every opcode from real BSON, every split of the bytes across reads, malformed frames. */
import assert from "node:assert/strict";
import { MongoDecodeError } from "./bson.ts";
import { type MessageSink, MongoDecoder } from "./codec.ts";
import { OpCode, type WireMessage } from "./message.ts";
import { documentText } from "./bson_text.ts";
import {
  concat,
  frame,
  opCommand,
  opCommandReply,
  opCompressed,
  opGetMore,
  opInsert,
  opKillCursors,
  opMsg,
  opQuery,
  opReply,
} from "./test_frames.ts";

/** What a test compares of a decoded message. */
function summary(m: WireMessage): string {
  const body = m.doc >= 0 ? documentText(m.buf, m.doc) : "-";
  const docs = m.docs.map((d) => documentText(m.buf, d)).join(",");
  return [
    m.opCode,
    m.requestId,
    m.responseTo,
    m.flags,
    m.opCode === OpCode.Msg ? "" : m.ns,
    body,
    docs,
    m.docCount,
    m.docBytes,
    m.opCode === OpCode.Compressed ? `${m.originalOpCode}/${m.compressorId}/${m.uncompressedSize}` : "",
  ].join("|");
}

class Recorder implements MessageSink {
  out: string[] = [];
  msgs: { opCode: number; flags: number; seq: string[] }[] = [];
  onMessage(m: WireMessage): void {
    this.out.push(summary(m));
    this.msgs.push({ opCode: m.opCode, flags: m.flags, seq: [...m.sequenceIds] });
  }
}

const STREAM: Uint8Array[] = [
  opMsg(1, { hello: 1, $db: "admin" }),
  opMsg(2, { insert: "users", ordered: true, $db: "app" }, {
    sequences: [{ id: "documents", docs: [{ _id: 1, name: "a" }, { _id: 2, name: "b" }] }],
  }),
  opMsg(3, { find: "users", filter: { _id: 1 }, $db: "app" }, { checksum: true }),
  opMsg(4, { insert: "logs", $db: "app" }, { flags: 2, sequences: [{ id: "documents", docs: [{ x: 1 }] }] }),
  opQuery(5, "admin.$cmd", { isMaster: 1, client: { driver: { name: "pymongo" } } }, { ret: -1 }),
  opQuery(6, "app.users", { $query: { _id: { $in: [1, 2] } }, $comment: '{"callingFunction":"getUsers"}' }, {
    fields: { name: 1 },
  }),
  opReply(7, 6, [{ _id: 1 }, { _id: 2 }], { cursorId: 42n, flags: 8 }),
  opGetMore(8, "app.users", 10, 42n),
  opInsert(9, "app.users", [{ a: 1 }, { b: "x" }], 1),
  opKillCursors(10, [42n, 43n]),
  opCommand(11, "app", "ping", { m: 1 }, { ping: 1 }),
  opCommandReply(12, 11, { m: 1 }, { ok: 1 }),
  opCompressed(opMsg(13, { ping: 1, $db: "admin" })),
  opCompressed(opMsg(14, { ping: 1, $db: "admin" }), 1),
  opMsg(15, { ok: 1, cursor: { id: 0n, ns: "app.users", firstBatch: [{ _id: 1 }] } }, { responseTo: 3 }),
];
const ALL = concat(...STREAM);

function decodeWhole(): string[] {
  const r = new Recorder();
  const d = new MongoDecoder(r);
  for (const f of STREAM) d.onData(f);
  return r.out;
}

Deno.test("mongo codec: every opcode decodes from real BSON", () => {
  const r = new Recorder();
  const d = new MongoDecoder(r);
  d.onData(ALL);
  assert.equal(r.out.length, STREAM.length);
  assert.equal(d.bufferedBytes, 0);
  const ops = r.msgs.map((m) => m.opCode);
  assert.deepEqual(ops, [
    2013,
    2013,
    2013,
    2013,
    2004,
    2004,
    1,
    2005,
    2002,
    2007,
    2010,
    2011,
    2012,
    2012,
    2013,
  ]);
  // OP_MSG with a document sequence: body + 2 documents, the identifier kept
  assert.match(r.out[1], /^2013\|2\|0\|0\|\|\{"insert": "users", "ordered": true, "\$db": "app"\}\|/);
  assert.equal(r.msgs[1].seq.join(), "documents");
  assert.ok(r.out[1].includes('{"_id": 1, "name": "a"},{"_id": 2, "name": "b"}|3|'));
  // checksum flag: the 4 trailing bytes are not a section
  assert.equal(r.msgs[2].flags, 1);
  assert.ok(r.out[2].includes('{"find": "users", "filter": {"_id": 1}, "$db": "app"}'));
  // moreToCome
  assert.equal(r.msgs[3].flags, 2);
  // OP_QUERY with a returnFieldsSelector; OP_REPLY with two documents and a cursor
  assert.match(r.out[5], /^2004\|6\|0\|0\|app\.users\|/);
  assert.match(r.out[6], /^1\|7\|6\|8\|.*\|\{"_id": 1\},\{"_id": 2\}\|2\|28\|$/);
  assert.match(r.out[8], /^2002\|9\|0\|1\|app\.users\|-\|\{"a": 1\},\{"b": "x"\}\|2\|/);
  // OP_COMPRESSED: the noop compressor's message is decoded, snappy's header only
  assert.match(r.out[12], /\{"ping": 1, "\$db": "admin"\}.*\|2013\/0\//);
  assert.match(r.out[13], /^2012\|14\|0\|.*\|-\|\|0\|0\|2013\/1\//);
});

Deno.test("mongo codec: any split of the stream across two reads decodes the same messages", () => {
  const want = decodeWhole();
  for (let cut = 0; cut <= ALL.length; cut++) {
    const r = new Recorder();
    const d = new MongoDecoder(r);
    d.onData(ALL.subarray(0, cut));
    d.onData(ALL.subarray(cut));
    assert.deepEqual(r.out, want, `split at ${cut}`);
    assert.equal(d.bufferedBytes, 0);
  }
});

Deno.test("mongo codec: every message split at every point into three reads; byte by byte", () => {
  for (const f of STREAM) {
    const r0 = new Recorder();
    new MongoDecoder(r0).onData(f);
    for (let a = 0; a <= f.length; a++) {
      for (let b = a; b <= f.length; b += 7) {
        const r = new Recorder();
        const d = new MongoDecoder(r);
        d.onData(f.subarray(0, a));
        d.onData(f.subarray(a, b));
        assert.ok(d.bufferedBytes <= f.length);
        d.onData(f.subarray(b));
        assert.deepEqual(r.out, r0.out, `op ${r0.msgs[0].opCode} split at ${a}/${b}`);
      }
    }
  }
  const r = new Recorder();
  const d = new MongoDecoder(r);
  for (let i = 0; i < ALL.length; i++) d.onData(ALL.subarray(i, i + 1));
  assert.deepEqual(r.out, decodeWhole());
  assert.equal(d.bufferedBytes, 0);
});

Deno.test("mongo codec: the partial message is held only up to its declared length", () => {
  const big = opMsg(1, { insert: "c", $db: "d" }, {
    sequences: [{
      id: "documents",
      docs: Array.from({ length: 200 }, (_, i) => ({ i, s: "x".repeat(500) })),
    }],
  });
  const r = new Recorder();
  const d = new MongoDecoder(r);
  for (let o = 0; o < big.length; o += 1000) {
    d.onData(big.subarray(o, Math.min(o + 1000, big.length)));
    assert.ok(d.bufferedBytes <= big.length);
  }
  assert.equal(r.out.length, 1);
  assert.equal(d.bufferedBytes, 0);
});

function fails(bytes: Uint8Array, why: RegExp, max?: number): void {
  const d = new MongoDecoder(new Recorder(), max);
  assert.throws(() => d.onData(bytes), (e: unknown) => e instanceof MongoDecodeError && why.test(e.message));
}

Deno.test("mongo codec: malformed messages throw MongoDecodeError", () => {
  const i32 = (v: number) => new Uint8Array(new Int32Array([v]).buffer);
  fails(concat(i32(8), i32(0)), /invalid message length 8/);
  fails(i32(48_000_001), /invalid message length/);
  fails(i32(2000), /invalid message length 2000/, 1000);
  fails(frame(2006, 1, 0, i32(0)), /invalid mongo op 2006/);
  fails(frame(2013, 1, 0, i32(0)), /without sections/);
  fails(frame(2013, 1, 0, i32(0), new Uint8Array([2, 5, 0, 0, 0, 0])), /section kind 2/);
  const body = opMsg(1, { a: 1 }).subarray(20);
  fails(frame(2013, 1, 0, i32(0), body, body), /two body sections/);
  const seqOnly = opMsg(1, { a: 1 }, { sequences: [{ id: "documents", docs: [{ x: 1 }] }] }).subarray(
    20 + body.length,
  );
  fails(frame(2013, 1, 0, i32(0), seqOnly), /without a body/);
  // trailing bytes after the documents of an OP_REPLY that says it has one
  const reply = opReply(2, 1, [{ a: 1 }]);
  fails(
    frame(1, 2, 1, reply.subarray(16), new Uint8Array([1, 2, 3])),
    /invalid BSON|invalid buffer|does not match/,
  );
  // a document whose length runs past the message
  const q = opQuery(3, "a.b", { a: 1 });
  const bad = q.slice();
  new DataView(bad.buffer).setInt32(q.length - 10, 500, true);
  fails(bad, /invalid BSON message length|invalid/);
  // an unknown BSON element type
  const t = opQuery(4, "a.b", { a: 1 }).slice();
  t[t.length - 1 - 1 - 4 - 2] = 0x42; // the element type byte of "a"
  fails(t, /invalid BSON element type: 0x42/);
  // OP_COMPRESSED: too short, nested, wrong noop size
  fails(frame(2012, 1, 0, i32(2013), i32(0)), /invalid OP_COMPRESSED/);
  fails(frame(2012, 1, 0, i32(2012), i32(0), new Uint8Array([1, 9])), /invalid OP_COMPRESSED/);
  fails(frame(2012, 1, 0, i32(2013), i32(99), new Uint8Array([0, 9])), /invalid OP_COMPRESSED size/);
});

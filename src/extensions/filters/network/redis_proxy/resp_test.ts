import assert from "node:assert/strict";
import {
  INCOMPLETE,
  integerReply,
  isOk,
  OutBuf,
  PROTOCOL_ERROR,
  RequestArgs,
  scanValue,
  text,
} from "./resp.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

function args(a: RequestArgs, buf: Uint8Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < a.count; i++) out.push(text(buf, a.starts[i], a.ends[i]));
  return out;
}

Deno.test("RequestArgs parses arrays of bulk strings in place", () => {
  const buf = b("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n");
  const a = new RequestArgs();
  const e1 = a.parse(buf, 0, buf.length);
  assert.ok(a.valid);
  assert.deepEqual(args(a, buf), ["SET", "k", ""]);
  assert.equal(a.frameStart, 0);
  assert.equal(a.frameEnd, e1);
  const e2 = a.parse(buf, e1, buf.length);
  assert.deepEqual(args(a, buf), ["PING"]);
  assert.equal(e2, buf.length);
});

Deno.test("RequestArgs: a request split at every byte is incomplete until its last byte", () => {
  const whole = b("*4\r\n$4\r\nMSET\r\n$5\r\nkey:1\r\n$10\r\n0123456789\r\n$1\r\nx\r\n");
  const a = new RequestArgs();
  for (let cut = 0; cut < whole.length; cut++) {
    assert.equal(a.parse(whole, 0, cut), INCOMPLETE, `cut at ${cut}`);
  }
  assert.equal(a.parse(whole, 0, whole.length), whole.length);
  assert.deepEqual(args(a, whole), ["MSET", "key:1", "0123456789", "x"]);
  // and in a buffer that holds more than the request
  const two = b("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
  const first = a.parse(two, 0, two.length);
  assert.deepEqual(args(a, two), ["GET", "a"]);
  assert.equal(a.parse(two, first, two.length - 1), INCOMPLETE);
});

Deno.test("RequestArgs: well-framed values that are not commands are invalid requests", () => {
  const a = new RequestArgs();
  for (
    const s of [
      "+OK\r\n",
      ":1\r\n",
      "$3\r\nGET\r\n",
      "*0\r\n",
      "*-1\r\n",
      "*2\r\n$3\r\nGET\r\n:1\r\n",
      "*2\r\n$3\r\nGET\r\n$-1\r\n",
      "*2\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n",
      "-ERR x\r\n",
    ]
  ) {
    const buf = b(s);
    assert.equal(a.parse(buf, 0, buf.length), buf.length, s);
    assert.equal(a.valid, false, s);
    assert.equal(a.count, 0, s);
  }
});

Deno.test("RequestArgs: malformed framing is a protocol error", () => {
  const a = new RequestArgs();
  for (
    const s of [
      "PING\r\n",
      "*x\r\n",
      "*1\r\n$3\r\nGETX\r\n",
      "*1\r\n$a\r\n",
      "*1\r\n$-5\r\n",
      "*1\r\r\n",
      "*1\r\n$3\rxGET\r\n",
      "?\r\n",
    ]
  ) {
    const buf = b(s);
    assert.equal(a.parse(buf, 0, buf.length), PROTOCOL_ERROR, JSON.stringify(s));
  }
});

Deno.test("fuzz: random and mutated input never throws and always ends in a defined outcome", () => {
  const a = new RequestArgs();
  const seeds = [
    b("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
    b("*2\r\n*2\r\n:1\r\n+x\r\n$-1\r\n"),
    b("*1\r\n$4\r\nPING\r\n"),
  ];
  const alphabet = b("*$:+-\r\n0123456789-abc");
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let round = 0; round < 20000; round++) {
    let buf: Uint8Array;
    if (round % 2 === 0) {
      const src = seeds[rnd(seeds.length)];
      buf = src.slice();
      for (let k = 0; k <= rnd(3); k++) buf[rnd(buf.length)] = alphabet[rnd(alphabet.length)];
    } else {
      buf = new Uint8Array(1 + rnd(40));
      for (let i = 0; i < buf.length; i++) buf[i] = alphabet[rnd(alphabet.length)];
    }
    let pos = 0;
    while (pos < buf.length) {
      const e = a.parse(buf, pos, buf.length);
      if (e < 0) {
        assert.ok(e === INCOMPLETE || e === PROTOCOL_ERROR);
        break;
      }
      assert.ok(e > pos && e <= buf.length);
      pos = e;
    }
    const s = scanValue(buf, 0, buf.length);
    assert.ok(s === INCOMPLETE || s === PROTOCOL_ERROR || (s > 0 && s <= buf.length));
  }
  // deep nesting is refused, not recursed into
  const deep = b("*1\r\n".repeat(5000) + ":1\r\n");
  assert.equal(scanValue(deep, 0, deep.length), PROTOCOL_ERROR);
});

Deno.test("scanValue finds reply boundaries, split anywhere", () => {
  const replies = [
    "+OK\r\n",
    "-ERR bad\r\n",
    ":-42\r\n",
    "$-1\r\n",
    "$5\r\nhello\r\n",
    "*-1\r\n",
    "*0\r\n",
    "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n",
  ];
  const all = b(replies.join(""));
  let pos = 0;
  for (const r of replies) {
    const e = scanValue(all, pos, all.length);
    assert.equal(text(all, pos, e), r);
    for (let cut = pos; cut < e; cut++) assert.equal(scanValue(all, pos, cut), INCOMPLETE);
    pos = e;
  }
  assert.equal(integerReply(b(":-42\r\n"), 0, 6), -42);
  assert.ok(Number.isNaN(integerReply(b("+OK\r\n"), 0, 5)));
  assert.ok(isOk(b("+OK\r\n"), 0, 5));
  assert.ok(!isOk(b("+OKAY\r\n"), 0, 7));
});

Deno.test("OutBuf encodes replies and grows", () => {
  const o = new OutBuf(4);
  o.simple("OK");
  o.error("bad\r\nthing");
  o.integer(-3);
  o.bulkAscii("hi");
  o.header(42, 0);
  assert.equal(text(o.buf, 0, o.len), "+OK\r\n-bad  thing\r\n:-3\r\n$2\r\nhi\r\n*0\r\n");
});

Deno.test("scanValue: RESP3 reply types (after HELLO 3), split anywhere", () => {
  const replies = [
    "_\r\n",
    ",3.14\r\n",
    "#t\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n",
    "=15\r\ntxt:Some string\r\n",
    "%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n_\r\n",
    "~2\r\n+a\r\n+b\r\n",
    ">2\r\n+message\r\n+x\r\n",
    "|1\r\n+ttl\r\n:3600\r\n$5\r\nhello\r\n",
    "%0\r\n",
    "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
  ];
  const all = b(replies.join(""));
  let pos = 0;
  for (const r of replies) {
    const e = scanValue(all, pos, all.length);
    assert.equal(text(all, pos, e), r);
    for (let cut = pos; cut < e; cut++) assert.equal(scanValue(all, pos, cut), INCOMPLETE, `${r} cut ${cut}`);
    pos = e;
  }
  assert.equal(scanValue(b("%-1\r\n"), 0, 5), PROTOCOL_ERROR);
  assert.equal(scanValue(b("!-1\r\n"), 0, 5), PROTOCOL_ERROR);
});

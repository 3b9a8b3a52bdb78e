import assert from "node:assert/strict";
import { HeaderMap } from "../headers.ts";
import { OutBuf } from "./frame.ts";
import { HpackDecoder, HpackEncoder, HpackResult } from "./hpack.ts";
import { huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.ts";

function hex(s: string): Uint8Array {
  const h = s.replace(/\s+/g, "");
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return b;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function decode(d: HpackDecoder, block: string): [string, string][] {
  const m = new HeaderMap();
  const b = hex(block);
  assert.equal(d.decode(b, 0, b.length, m, 1 << 20, 1000), HpackResult.OK);
  return [...m];
}

const latin1 = (b: Uint8Array) => String.fromCharCode(...b);

Deno.test("huffman", async (t) => {
  await t.step("RFC 7541 C.4 strings encode and decode", () => {
    const cases: [string, string][] = [
      ["www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"],
      ["no-cache", "a8eb10649cbf"],
      ["custom-key", "25a849e95ba97d7f"],
      ["custom-value", "25a849e95bb8e8b4bf"],
    ];
    for (const [s, h] of cases) {
      const out = new Uint8Array(huffmanLength(s));
      assert.equal(huffmanEncode(s, out, 0), out.length);
      assert.equal(toHex(out), h);
      const dst = new Uint8Array(64);
      const src = hex(h);
      const n = huffmanDecode(src, 0, src.length, dst);
      assert.equal(latin1(dst.subarray(0, n)), s);
    }
  });
  await t.step("every byte value round-trips, long codes included", () => {
    const s = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i)) + "\xff\xfe\x00abc";
    const out = new Uint8Array(huffmanLength(s));
    huffmanEncode(s, out, 0);
    const dst = new Uint8Array(out.length * 2);
    const n = huffmanDecode(out, 0, out.length, dst);
    assert.equal(latin1(dst.subarray(0, n)), s);
  });
  await t.step("rejects EOS and bad padding", () => {
    const dst = new Uint8Array(64);
    // 30 one-bits = EOS inside the string
    assert.equal(huffmanDecode(hex("ffffffff"), 0, 4, dst), -1);
    // "0" is 00000 (5 bits); padding with zeros is invalid
    assert.equal(huffmanDecode(hex("00"), 0, 1, dst), -1);
    // "0" + 111 padding is valid
    assert.equal(huffmanDecode(hex("07"), 0, 1, dst), 1);
    // a whole byte of padding (8 one-bits) after a symbol is invalid
    assert.equal(huffmanDecode(hex("07ff"), 0, 2, dst), -1);
  });
});

Deno.test("hpack decoder: RFC 7541 Appendix C", async (t) => {
  await t.step("C.2 field representations", () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, "400a637573746f6d2d6b65790d637573746f6d2d686561646572"), [[
      "custom-key",
      "custom-header",
    ]]);
    assert.equal(d.tableSize, 55);
    assert.deepEqual(decode(new HpackDecoder(), "040c2f73616d706c652f70617468"), [[":path", "/sample/path"]]);
    const d3 = new HpackDecoder();
    assert.deepEqual(decode(d3, "100870617373776f726406736563726574"), [["password", "secret"]]);
    assert.equal(d3.tableSize, 0);
    assert.deepEqual(decode(new HpackDecoder(), "82"), [[":method", "GET"]]);
  });
  const req1 = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]];
  const req2 = [...req1, ["cache-control", "no-cache"]];
  const req3 = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [
    ":authority",
    "www.example.com",
  ], ["custom-key", "custom-value"]];
  await t.step("C.3 requests without Huffman", () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, "828684410f7777772e6578616d706c652e636f6d"), req1);
    assert.equal(d.tableSize, 57);
    assert.deepEqual(decode(d, "828684be58086e6f2d6361636865"), req2);
    assert.equal(d.tableSize, 110);
    assert.deepEqual(decode(d, "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"), req3);
    assert.equal(d.tableSize, 164);
  });
  await t.step("C.4 requests with Huffman", () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, "828684418cf1e3c2e5f23a6ba0ab90f4ff"), req1);
    assert.deepEqual(decode(d, "828684be5886a8eb10649cbf"), req2);
    assert.deepEqual(decode(d, "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"), req3);
    assert.equal(d.tableSize, 164);
  });
  const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
  const date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
  const loc = "https://www.example.com";
  const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
  const resp1 = [[":status", "302"], ["cache-control", "private"], ["date", date1], ["location", loc]];
  const resp2 = [[":status", "307"], ["cache-control", "private"], ["date", date1], ["location", loc]];
  const resp3 = [[":status", "200"], ["cache-control", "private"], ["date", date2], ["location", loc], [
    "content-encoding",
    "gzip",
  ], ["set-cookie", cookie]];
  await t.step("C.5 responses without Huffman, eviction at 256 octets", () => {
    const d = new HpackDecoder(256);
    assert.deepEqual(
      decode(
        d,
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
      ),
      resp1,
    );
    assert.equal(d.tableSize, 222);
    assert.deepEqual(decode(d, "4803333037c1c0bf"), resp2);
    assert.equal(d.tableSize, 222);
    assert.deepEqual(
      decode(
        d,
        "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
      ),
      resp3,
    );
    assert.equal(d.tableSize, 215);
  });
  await t.step("C.6 responses with Huffman", () => {
    const d = new HpackDecoder(256);
    assert.deepEqual(
      decode(
        d,
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
      ),
      resp1,
    );
    assert.deepEqual(decode(d, "4883640effc1c0bf"), resp2);
    assert.deepEqual(
      decode(
        d,
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
      ),
      resp3,
    );
    assert.equal(d.tableSize, 215);
  });
});

Deno.test("hpack decoder: errors and limits", async (t) => {
  const run = (d: HpackDecoder, h: string, max = 1 << 20, count = 100) => {
    const b = hex(h);
    const m = new HeaderMap();
    return { r: d.decode(b, 0, b.length, m, max, count), m };
  };
  await t.step("index 0, out of range, truncated", () => {
    assert.equal(run(new HpackDecoder(), "80").r, HpackResult.ERROR);
    assert.equal(run(new HpackDecoder(), "be").r, HpackResult.ERROR);
    assert.equal(run(new HpackDecoder(), "400a6375").r, HpackResult.ERROR);
    assert.equal(run(new HpackDecoder(), "ffffffffffffff").r, HpackResult.ERROR);
  });
  await t.step("size update above SETTINGS or after a field", () => {
    assert.equal(run(new HpackDecoder(4096), "3fe21f").r, HpackResult.ERROR); // 4097
    assert.equal(run(new HpackDecoder(4096), "3fe11f82").r, HpackResult.OK); // 4096
    assert.equal(run(new HpackDecoder(4096), "8220").r, HpackResult.ERROR);
  });
  await t.step("HPACK bomb: one big entry referenced many times stops at the list limit", () => {
    const d = new HpackDecoder();
    const head = [0x40, 4, ...new TextEncoder().encode("bomb"), 0x7f, 0xa1, 0x1e];
    const o = { buf: new Uint8Array(head.length + 4000 + 10000), len: 0 };
    o.buf.set(head);
    o.buf.fill(0x78, head.length, head.length + 4000);
    o.buf.fill(0xbe, head.length + 4000);
    o.len = o.buf.length;
    const m = new HeaderMap();
    const r = d.decode(o.buf, 0, o.len, m, 60 * 1024, 100);
    assert.equal(r, HpackResult.OVERFLOW);
    assert.ok(m.size <= 15, `kept ${m.size}`);
    assert.equal(d.tableSize, 4000 + 4 + 32);
  });
  await t.step("header count limit", () => {
    const b = new Uint8Array(200).fill(0x82);
    const m = new HeaderMap();
    assert.equal(new HpackDecoder().decode(b, 0, b.length, m, 1 << 20, 100), HpackResult.OVERFLOW);
    assert.equal(m.size, 100);
  });
});

Deno.test("hpack encoder round trips through the decoder", async (t) => {
  await t.step("many blocks share the dynamic table and stay in step", () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder();
    for (let i = 0; i < 300; i++) {
      const fields: [string, string][] = [
        [":status", "200"],
        ["content-type", i % 2 ? "text/plain" : "application/json"],
        ["x-custom-" + (i % 37), "value-" + (i % 11)],
        ["authorization", "secret" + i],
        ["x-bin", "\x00\x7f\x80\xff" + i],
        ["x-long", "y".repeat(i * 7)],
      ];
      const o = new OutBuf(16);
      enc.begin(o);
      for (const [n, v] of fields) enc.field(o, n, v);
      const m = new HeaderMap();
      assert.equal(dec.decode(o.buf, 0, o.len, m, 1 << 20, 100), HpackResult.OK);
      assert.deepEqual([...m], fields);
    }
  });
  await t.step("repeated fields are indexed (second block is small)", () => {
    const enc = new HpackEncoder();
    const fields: [string, string][] = [["user-agent", "nuncio-test/1.0"], ["x-tenant", "acme"]];
    const sizes = [0, 1].map(() => {
      const o = new OutBuf();
      enc.begin(o);
      for (const [n, v] of fields) enc.field(o, n, v);
      return o.len;
    });
    assert.equal(sizes[1], 2);
    assert.ok(sizes[0] > 10);
  });
  await t.step("date is indexed (repeats within a second); x-request-id and content-length are not", () => {
    const enc = new HpackEncoder();
    const block = (fields: [string, string][]) => {
      const o = new OutBuf();
      enc.begin(o);
      for (const [n, v] of fields) enc.field(o, n, v);
      return o.len;
    };
    const date = "Mon, 23 Nov 2026 01:44:51 GMT";
    assert.ok(block([["date", date]]) > 15);
    assert.equal(block([["date", date]]), 1);
    const id = "5f0c7e6e-4b9a-4c8e-9d57-0e8b8f3d2a11";
    assert.equal(block([["x-request-id", id]]), block([["x-request-id", id]]), "sent literally each time");
    assert.ok(block([["content-length", "22"]]) > 1 && block([["content-length", "22"]]) > 1);
  });
  await t.step("peer table size changes are signalled and honoured", () => {
    const enc = new HpackEncoder();
    const dec = new HpackDecoder(4096);
    const send = (fields: [string, string][]) => {
      const o = new OutBuf();
      enc.begin(o);
      for (const [n, v] of fields) enc.field(o, n, v);
      const m = new HeaderMap();
      assert.equal(dec.decode(o.buf, 0, o.len, m, 1 << 20, 100), HpackResult.OK);
      assert.deepEqual([...m], fields);
      return o;
    };
    send([["x-a", "1"], ["x-b", "2"]]);
    assert.ok(dec.tableSize > 0);
    enc.setPeerMaxTableSize(0);
    const o = send([["x-a", "1"]]);
    assert.equal(o.buf[0], 0x20);
    assert.equal(dec.tableSize, 0);
    enc.setPeerMaxTableSize(100);
    send([["x-c", "3"], ["x-c", "3"]]);
    assert.ok(dec.tableSize > 0 && dec.tableSize <= 100);
  });
});

import assert from "node:assert/strict";
import zlib from "node:zlib";
import { StatsStore } from "../../../stats/store.ts";
import { BrotliCompressorFactory } from "../brotli/compressor/mod.ts";
import { brotliCompressorSchema } from "../brotli/compressor/config.ts";
import { BrotliDecompressorFactory } from "../brotli/decompressor/mod.ts";
import { brotliDecompressorSchema } from "../brotli/decompressor/config.ts";
import { GzipCompressorFactory } from "../gzip/compressor/mod.ts";
import { gzipCompressorSchema } from "../gzip/compressor/config.ts";
import { GzipDecompressorFactory } from "../gzip/decompressor/mod.ts";
import { gzipDecompressorSchema } from "../gzip/decompressor/config.ts";
import { ZstdCompressorFactory } from "../zstd/compressor/mod.ts";
import { zstdCompressorSchema } from "../zstd/compressor/config.ts";
import { ZstdDecompressorFactory } from "../zstd/decompressor/mod.ts";
import { zstdDecompressorSchema } from "../zstd/decompressor/config.ts";
import { nativeZlibAvailable } from "./native_stream.ts";
import type { CompressorFactory, DecompressorFactory } from "./types.ts";

const enc = new TextEncoder();

function text(n: number): Uint8Array {
  let s = "";
  for (let i = 0; s.length < n; i++) s += `{"id":${i},"name":"item ${i % 97}","tags":["a","b"]},`;
  return enc.encode(s.slice(0, n));
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Compresses `input` in `chunk`-sized pieces, each flushed; returns every piece's output. */
function compressChunks(f: CompressorFactory, input: Uint8Array, chunk: number): Uint8Array[] {
  const c = f.create();
  const out: Uint8Array[] = [];
  for (let off = 0; off < input.length; off += chunk) {
    out.push(c.compress(input.subarray(off, off + chunk), off + chunk >= input.length));
  }
  c.release();
  return out;
}

const LIBS: [string, CompressorFactory, (b: Uint8Array) => Uint8Array][] = [
  ["gzip", new GzipCompressorFactory(gzipCompressorSchema.parse({})), (b) => zlib.gunzipSync(b)],
  ["br", new BrotliCompressorFactory(brotliCompressorSchema.parse({})), (b) => zlib.brotliDecompressSync(b)],
  ["zstd", new ZstdCompressorFactory(zstdCompressorSchema.parse({})), (b) => zlib.zstdDecompressSync(b)],
];

Deno.test("node:zlib exposes the handle internals the libraries drive", () => {
  assert.equal(nativeZlibAvailable(), true);
});

Deno.test("compressors: every chunk flushes output the reference decoder reads; pooled streams repeat", () => {
  const input = text(300_000);
  for (const [name, f, decode] of LIBS) {
    const parts = compressChunks(f, input, 65536);
    for (const p of parts) assert.ok(p.length > 0, `${name}: a chunk produced nothing`);
    const whole = concat(parts);
    assert.deepEqual(new Uint8Array(decode(whole)), input, name);
    assert.ok(whole.length < input.length / 3, `${name}: ${whole.length} bytes`);
    // a second stream (pooled for gzip and zstd) produces the same bytes
    assert.deepEqual(concat(compressChunks(f, input, 65536)), whole, `${name} again`);
    f.close();
  }
});

Deno.test("compressors: a flushed prefix decodes before the stream finishes", () => {
  const input = text(50_000);
  const f = new GzipCompressorFactory(gzipCompressorSchema.parse({ compression_level: "best_speed" }));
  const c = f.create();
  const head = c.compress(input.subarray(0, 20_000), false);
  // a sync-flushed deflate prefix inflates to exactly the input so far
  const partial = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.equal(partial.length, 20_000);
  const tail = c.compress(input.subarray(20_000), true);
  c.release();
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(concat([head, tail]))), input);
  f.close();
});

Deno.test("compressors: gzip options reach zlib (level, window, strategy)", () => {
  const input = text(100_000);
  const size = (o: Record<string, unknown>) => {
    const f = new GzipCompressorFactory(gzipCompressorSchema.parse(o));
    const n = concat(compressChunks(f, input, input.length)).length;
    f.close();
    return n;
  };
  const best = size({ compression_level: "BEST_COMPRESSION", window_bits: 15, memory_level: 9 });
  const fast = size({ compression_level: "COMPRESSION_LEVEL_1", window_bits: 9 });
  const huffman = size({ compression_strategy: "HUFFMAN_ONLY" });
  assert.ok(best < fast, `${best} < ${fast}`);
  assert.ok(fast < huffman, `${fast} < ${huffman}`);
});

function decompressors(): [string, DecompressorFactory, (b: Uint8Array) => Uint8Array][] {
  return [
    ["gzip", new GzipDecompressorFactory(gzipDecompressorSchema.parse({})), (b) => zlib.gzipSync(b)],
    [
      "br",
      new BrotliDecompressorFactory(brotliDecompressorSchema.parse({})),
      (b) => zlib.brotliCompressSync(b),
    ],
    ["zstd", new ZstdDecompressorFactory(zstdDecompressorSchema.parse({})), (b) => zlib.zstdCompressSync(b)],
  ];
}

Deno.test("decompressors: chunked input decodes; garbage counts the library's error and stops", () => {
  const input = text(200_000);
  for (const [name, f, encode] of decompressors()) {
    const store = new StatsStore();
    const stats = f.stats(store.scope("lib"));
    const compressed = new Uint8Array(encode(input));
    const d = f.create(stats);
    const out: Uint8Array[] = [];
    for (let off = 0; off < compressed.length; off += 1000) {
      out.push(d.decompress(compressed.subarray(off, off + 1000)));
    }
    d.release();
    assert.deepEqual(concat(out), input, name);
    const bad = f.create(stats);
    assert.equal(bad.decompress(enc.encode("this is not compressed at all, not even close")).length, 0, name);
    assert.equal(bad.decompress(compressed).length, 0, `${name}: stopped`);
    bad.release();
    // one error event (brotli reads these bytes as a tiny stream followed by redundant input: two counters)
    const errors = Object.entries(store.snapshot().counters).filter(([, v]) => v > 0);
    assert.ok(errors.length >= 1 && errors.every(([, v]) => v === 1), `${name}: ${JSON.stringify(errors)}`);
    f.close();
  }
});

Deno.test("decompressors: output over max_inflate_ratio stops the stream (zlib_data_error)", () => {
  const zeros = new Uint8Array(4 << 20);
  const bomb = new Uint8Array(zlib.gzipSync(zeros));
  const store = new StatsStore();
  const f = new GzipDecompressorFactory(gzipDecompressorSchema.parse({ max_inflate_ratio: 10 }));
  const stats = f.stats(store.scope("lib"));
  const d = f.create(stats);
  const out = d.decompress(bomb);
  assert.ok(out.length < zeros.length, `${out.length}`);
  assert.equal(store.snapshot().counters["lib.zlib_data_error"], 1);
  assert.equal(d.decompress(bomb).length, 0);
  d.release();
  // the default ratio (100) lets an ordinary body through
  const ok = new GzipDecompressorFactory(gzipDecompressorSchema.parse({}));
  const d2 = ok.create(ok.stats(store.scope("ok")));
  const body = text(100_000);
  assert.deepEqual(d2.decompress(new Uint8Array(zlib.gzipSync(body))), body);
  d2.release();
  f.close();
  ok.close();
});

Deno.test("decompressors: brotli input after the end of its stream counts brotli_redundant_input", () => {
  const store = new StatsStore();
  const f = new BrotliDecompressorFactory(brotliDecompressorSchema.parse({}));
  const d = f.create(f.stats(store.scope("lib")));
  const body = enc.encode("hello brotli");
  const out = d.decompress(concat([new Uint8Array(zlib.brotliCompressSync(body)), enc.encode("trailing")]));
  assert.deepEqual(out, body);
  d.release();
  const c = store.snapshot().counters;
  assert.equal(c["lib.brotli_redundant_input"], 1);
  assert.equal(c["lib.brotli_error"], 1);
});

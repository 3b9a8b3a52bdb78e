/** Test helpers: Mongo wire frames built from real BSON (npm `bson`), a filter over a fake connection. */
import { type Document, serialize } from "bson";
import { ManualClock } from "../../../../common/clock.ts";
import { StreamInfo } from "../../../../common/stream_info.ts";
import type { DownstreamConnection, FactoryContext } from "../../../../network/filter.ts";
import { StatsStore } from "../../../../stats/store.ts";
import { mongoProxySchema } from "./config.ts";
import { MongoProxyFactory, type MongoProxyOptions } from "./factory.ts";
import type { MongoProxyFilter } from "./filter.ts";

const enc = new TextEncoder();

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function i32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

function i64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, v, true);
  return b;
}

function cstr(s: string): Uint8Array {
  return concat(enc.encode(s), new Uint8Array([0]));
}

/** A BSON document. */
export function doc(d: Document): Uint8Array {
  return serialize(d);
}

/** A whole message: header (length computed) + body. */
export function frame(
  opCode: number,
  requestId: number,
  responseTo: number,
  ...body: Uint8Array[]
): Uint8Array {
  const b = concat(...body);
  return concat(i32(16 + b.length), i32(requestId), i32(responseTo), i32(opCode), b);
}

/** OP_MSG with a body and optional kind-1 sequences; `checksum` appends 4 (unchecked) bytes and sets the flag. */
export function opMsg(
  requestId: number,
  body: Document,
  opts: {
    responseTo?: number;
    flags?: number;
    sequences?: { id: string; docs: Document[] }[];
    checksum?: boolean;
  } = {},
): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0]), doc(body)];
  for (const s of opts.sequences ?? []) {
    const docs = concat(...s.docs.map(doc));
    const id = cstr(s.id);
    parts.push(new Uint8Array([1]), i32(4 + id.length + docs.length), id, docs);
  }
  const flags = (opts.flags ?? 0) | (opts.checksum ? 1 : 0);
  if (opts.checksum) parts.push(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  return frame(2013, requestId, opts.responseTo ?? 0, i32(flags), ...parts);
}

/** OP_QUERY. */
export function opQuery(
  requestId: number,
  ns: string,
  query: Document,
  opts: { flags?: number; skip?: number; ret?: number; fields?: Document } = {},
): Uint8Array {
  return frame(
    2004,
    requestId,
    0,
    i32(opts.flags ?? 0),
    cstr(ns),
    i32(opts.skip ?? 0),
    i32(opts.ret ?? 0),
    doc(query),
    ...(opts.fields ? [doc(opts.fields)] : []),
  );
}

/** OP_REPLY. */
export function opReply(
  requestId: number,
  responseTo: number,
  docs: Document[],
  opts: { flags?: number; cursorId?: bigint; from?: number } = {},
): Uint8Array {
  return frame(
    1,
    requestId,
    responseTo,
    i32(opts.flags ?? 0),
    i64(opts.cursorId ?? 0n),
    i32(opts.from ?? 0),
    i32(docs.length),
    ...docs.map(doc),
  );
}

/** OP_GET_MORE. */
export function opGetMore(requestId: number, ns: string, ret: number, cursorId: bigint): Uint8Array {
  return frame(2005, requestId, 0, i32(0), cstr(ns), i32(ret), i64(cursorId));
}

/** OP_INSERT. */
export function opInsert(requestId: number, ns: string, docs: Document[], flags = 0): Uint8Array {
  return frame(2002, requestId, 0, i32(flags), cstr(ns), ...docs.map(doc));
}

/** OP_KILL_CURSORS. */
export function opKillCursors(requestId: number, cursors: bigint[]): Uint8Array {
  return frame(2007, requestId, 0, i32(0), i32(cursors.length), ...cursors.map(i64));
}

/** OP_COMMAND (deprecated opcode 2010). */
export function opCommand(requestId: number, db: string, name: string, metadata: Document, args: Document) {
  return frame(2010, requestId, 0, cstr(db), cstr(name), doc(metadata), doc(args));
}

/** OP_COMMANDREPLY (2011). */
export function opCommandReply(requestId: number, responseTo: number, metadata: Document, reply: Document) {
  return frame(2011, requestId, responseTo, doc(metadata), doc(reply));
}

/**
 * OP_COMPRESSED holding `inner` (a whole message: its header gives the ids and opcode); with compressor 0 the
 * body is stored as is, with others `payload` stands for the compressed bytes.
 */
export function opCompressed(inner: Uint8Array, compressorId = 0, payload?: Uint8Array): Uint8Array {
  const dv = new DataView(inner.buffer, inner.byteOffset, inner.byteLength);
  const body = inner.subarray(16);
  return frame(
    2012,
    dv.getInt32(4, true),
    dv.getInt32(8, true),
    i32(dv.getInt32(12, true)),
    i32(body.length),
    new Uint8Array([compressorId]),
    compressorId === 0 ? body : payload ?? new Uint8Array([1, 2, 3, 4]),
  );
}

/** A fake downstream connection with a StreamInfo (as tcp_proxy sets it). */
export class FakeConn implements DownstreamConnection {
  readonly id = 1;
  readonly conn = {} as Deno.Conn;
  readonly remoteIp = "127.0.0.1";
  readonly remoteAddress = "127.0.0.1:5000";
  readonly localAddress = "127.0.0.1:27017";
  readonly scheme = "http" as const;
  readonly serverName = "";
  readonly bufferLimitBytes = 1 << 20;
  readonly observed = true;
  streamInfo: StreamInfo | null = new StreamInfo();
  closed = false;
  closeCalls = 0;
  observeRead(): undefined {
    return undefined;
  }
  observeWrite(): void {}
  close(): void {
    this.closeCalls++;
    this.closed = true;
  }
}

/** A filter (with its factory, stats store, clock and connection) for tests. */
export interface Harness {
  factory: MongoProxyFactory;
  filter: MongoProxyFilter;
  stats: StatsStore;
  clock: ManualClock;
  conn: FakeConn;
  /** The counter `mongo.<prefix>.<name>`'s value (undefined when it does not exist). */
  counter(name: string): number | undefined;
  /** The histogram `mongo.<prefix>.<name>`'s samples count and sum (undefined when it does not exist). */
  histogram(name: string): { count: number; sum: number } | undefined;
  /** A new filter on a new connection of the same factory. */
  another(): { filter: MongoProxyFilter; conn: FakeConn };
}

/** Builds a filter from a (partial) MongoProxy config; stat_prefix defaults to "p". */
export function harness(config: Record<string, unknown> = {}, opts: MongoProxyOptions = {}): Harness {
  const stats = new StatsStore();
  const clock = new ManualClock();
  const errors: string[] = [];
  // decoding errors are logged at info: kept here, not printed
  const log = { info: (m: string) => errors.push(m), debug: () => {}, enabled: () => false };
  const ctx = { stats, clock, log } as unknown as FactoryContext;
  const parsed = mongoProxySchema.parse({ stat_prefix: "p", ...config });
  const factory = new MongoProxyFactory(parsed, ctx, opts);
  const prefix = `mongo.${parsed.stat_prefix}.`;
  const another = () => {
    const conn = new FakeConn();
    return { filter: factory.createFilter(conn) as MongoProxyFilter, conn };
  };
  const first = another();
  return {
    factory,
    stats,
    clock,
    ...first,
    counter: (n) => stats.counters.get(prefix + n)?.value,
    histogram: (n) => {
      const h = stats.histograms.get(prefix + n);
      return h && { count: h.count, sum: h.sum };
    },
    another,
  };
}

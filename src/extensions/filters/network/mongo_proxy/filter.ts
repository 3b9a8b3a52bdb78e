/**
 * envoy.filters.network.mongo_proxy: a sniffer placed before tcp_proxy. It never changes a byte: it decodes the
 * Mongo messages of both directions (codec.ts) into Envoy's stats (stats.ts), an optional access log, dynamic
 * metadata, fault delays, and the drain of a connection after the reply in flight.
 *
 * What nuncio counts that Envoy does not (Envoy decodes no OP_MSG, so behind it a modern driver shows only its
 * OP_QUERY handshake):
 * - OP_MSG is decoded into the stats the same operation gives as a legacy OP_QUERY on `<db>.$cmd`: each request
 *   counts `op_query` (Envoy counts a command sent by OP_QUERY there too; `op_command` stays the deprecated
 *   OP_COMMAND opcode's) plus nuncio's `op_msg`; a `find` is a query on its collection (`collection.<c>.query.*`,
 *   type from its `filter`, call site from its `comment`, and, as Envoy, `op_query_no_max_time` since a
 *   command's maxTimeMS is not read); any other command counts `cmd.<name>.total` (`unknown_command` unless in
 *   `commands`). Replies match requests by `responseTo`, count `op_reply` plus `op_msg_reply`, and record the
 *   reply histograms with the documents of the reply (its body and any document sequence), as a legacy command
 *   reply (one document) would. An OP_MSG reply never counts `op_reply_valid_cursor`, `_cursor_not_found` or
 *   `_query_failure`: a command reply carries those in its body, as over OP_QUERY. `exhaustAllowed` counts
 *   `op_query_exhaust`; a request with `moreToCome` expects no reply, so it leaves no active query.
 * - OP_COMPRESSED counts `op_compressed` / `op_compressed_reply`; with the noop compressor the message it holds
 *   is decoded as if sent plainly; with snappy, zlib or zstd only its header is read, so the operation is not
 *   classified and a compressed reply ends its query without recording the reply histograms.
 * - Dynamic metadata of an OP_MSG: `insert`, `update`, `delete` for those commands, `query` for any other, on
 *   `<$db>.<collection>` (the command's first value when it is a string, else `$cmd`).
 */
import type { TimerHandle } from "../../../../common/clock.ts";
import type { DownstreamConnection, ReadFilter } from "../../../../network/filter.ts";
import { runtime } from "../../../../runtime/current.ts";
import type { MongoAccessLog } from "./access_log.ts";
import { msgCollection, msgDatabase } from "./classify.ts";
import type { MongoProxyFactory } from "./factory.ts";
import { MongoDecoder } from "./codec.ts";
import { hasCursor, MsgFlags, OpCode, type WireMessage } from "./message.ts";
import { type CollectionStats, type CommandStats, type QueryStats, QueryType } from "./stats.ts";

/** Envoy's runtime keys (MongoRuntimeConfig). */
const RT_PROXY_ENABLED = "mongo.proxy_enabled";
const RT_LOGGING_ENABLED = "mongo.logging_enabled";
const RT_CONNECTION_LOGGING_ENABLED = "mongo.connection_logging_enabled";
const RT_DRAIN_CLOSE_ENABLED = "mongo.drain_close_enabled";
/** The dynamic metadata namespace. */
export const METADATA_NAMESPACE = "envoy.filters.network.mongo_proxy";

const QUERY_FLAG_TAILABLE = 1 << 1;
const QUERY_FLAG_NO_CURSOR_TIMEOUT = 1 << 4;
const QUERY_FLAG_AWAIT_DATA = 1 << 5;
const QUERY_FLAG_EXHAUST = 1 << 6;
const REPLY_FLAG_CURSOR_NOT_FOUND = 1 << 0;
const REPLY_FLAG_QUERY_FAILURE = 1 << 1;

/** A query awaiting its reply, with the stats its reply is recorded under. */
class ActiveQuery {
  constructor(
    readonly requestId: number,
    readonly start: number,
    readonly command: CommandStats | null,
    readonly collection: CollectionStats | null,
    readonly callsite: QueryStats | null,
  ) {}
}

/** One connection's sniffer. */
export class MongoProxyFilter implements ReadFilter {
  readonly #f: MongoProxyFactory;
  readonly #conn: DownstreamConnection;
  #requests: MongoDecoder | null = null;
  #replies: MongoDecoder | null = null;
  /** Direction of the bytes being decoded (onWrite: from upstream). */
  #reply = false;
  #sniffing = true;
  readonly #active: ActiveQuery[] = [];
  #log: MongoAccessLog | null;
  #downstreamEnded = false;
  #upstreamEnded = false;
  #draining = false;
  #closing = false;
  #closed = false;
  #hold: Promise<void> | null = null;
  #release: (() => void) | null = null;
  #delayTimer: TimerHandle | undefined;
  #onDelayEnd: (() => void) | null = null;

  constructor(f: MongoProxyFactory, conn: DownstreamConnection) {
    this.#f = f;
    this.#conn = conn;
    this.#log = f.accessLog !== null && runtime().featureEnabled(RT_CONNECTION_LOGGING_ENABLED, 100)
      ? f.accessLog
      : null;
  }

  /** Bytes held for incomplete messages, both directions (tests). */
  get bufferedBytes(): number {
    return (this.#requests?.bufferedBytes ?? 0) + (this.#replies?.bufferedBytes ?? 0);
  }

  /** Queries awaiting a reply (tests). */
  get activeQueries(): number {
    return this.#active.length;
  }

  onData(data: Uint8Array, endStream: boolean): Promise<void> | undefined {
    if (endStream && !this.#upstreamEnded) this.#downstreamEnded = true;
    if (data.length > 0 && this.#sniffing) {
      this.#reply = false;
      this.#decode(this.#requests ??= new MongoDecoder(this, this.#f.maxMessageBytes), data);
    }
    return this.#hold ?? undefined;
  }

  onWrite(data: Uint8Array, endStream: boolean): void {
    if (endStream && !this.#downstreamEnded) this.#upstreamEnded = true;
    if (data.length === 0 || !this.#sniffing) return;
    this.#reply = true;
    this.#decode(this.#replies ??= new MongoDecoder(this, this.#f.maxMessageBytes), data);
  }

  /**
   * The listener drains. As Envoy, the connection is closed after the reply that leaves no query in flight;
   * an idle one is closed at once unless `keepIdle` (an LDS update: left to the end of the drain time).
   */
  onDrain(keepIdle?: boolean): void {
    if (this.#closed || !runtime().featureEnabled(RT_DRAIN_CLOSE_ENABLED, 100)) return;
    this.#draining = true;
    // idle: nothing in flight as far as decoding knows (after a decoding error it cannot know: left to the end)
    if (
      !keepIdle && this.#sniffing && this.#active.length === 0 && (this.#requests?.bufferedBytes ?? 0) === 0
    ) {
      this.#drainClose();
    }
  }

  onClose(): void {
    this.#closed = true;
    const g = this.#f.stats.global;
    if (this.#active.length > 0) {
      // the peer ended first: a remote close; else nuncio closed it (upstream gone, timeout, drain, reset)
      if (this.#downstreamEnded) g.cx_destroy_remote_with_active_rq.inc();
      else g.cx_destroy_local_with_active_rq.inc();
      g.op_query_active.dec(this.#active.length);
      this.#active.length = 0;
    }
    this.#endDelay();
    this.#requests = this.#replies = null;
  }

  #decode(d: MongoDecoder, data: Uint8Array): void {
    if (!runtime().featureEnabled(RT_PROXY_ENABLED, 100)) {
      d.reset();
      return;
    }
    if (this.#f.emitDynamicMetadata) this.#clearMetadata();
    try {
      d.onData(data);
    } catch (e) {
      this.#f.stats.global.decoding_error.inc();
      this.#sniffing = false;
      this.#requests = this.#replies = null;
      this.#f.ctx.log.info(`[C${this.#conn.id}] mongo decoding error: ${(e as Error).message}`);
    }
  }

  /** MessageSink: one decoded message of the current direction. */
  onMessage(m: WireMessage): void {
    const g = this.#f.stats.global;
    if (m.opCode === OpCode.Compressed) {
      (this.#reply ? g.op_compressed_reply : g.op_compressed).inc();
      if (m.compressorId !== 0) {
        this.#logMessage(m, !this.#reply);
        if (this.#reply) this.#replied(m.responseTo, -1, 0);
        else this.#tryInjectDelay();
        return;
      }
      m.opCode = m.originalOpCode;
    }
    switch (m.opCode) {
      case OpCode.Msg:
        if (this.#reply) {
          g.op_msg_reply.inc();
          g.op_reply.inc();
          this.#logMessage(m, false);
          this.#replied(m.responseTo, m.docCount, m.docBytes);
        } else this.#msgRequest(m);
        return;
      case OpCode.Query:
        return this.#query(m);
      case OpCode.Reply:
        g.op_reply.inc();
        this.#logMessage(m, false);
        if (hasCursor(m)) g.op_reply_valid_cursor.inc();
        if (m.flags & REPLY_FLAG_CURSOR_NOT_FOUND) g.op_reply_cursor_not_found.inc();
        if (m.flags & REPLY_FLAG_QUERY_FAILURE) g.op_reply_query_failure.inc();
        this.#replied(m.responseTo, m.docCount, m.docBytes);
        return;
      case OpCode.GetMore:
        this.#tryInjectDelay();
        g.op_get_more.inc();
        break;
      case OpCode.Insert:
        this.#tryInjectDelay();
        if (this.#f.emitDynamicMetadata) this.#setMetadata("insert", m.ns);
        g.op_insert.inc();
        break;
      case OpCode.KillCursors:
        this.#tryInjectDelay();
        g.op_kill_cursors.inc();
        break;
      case OpCode.Command:
        this.#tryInjectDelay();
        g.op_command.inc();
        break;
      case OpCode.CommandReply:
        this.#tryInjectDelay();
        g.op_command_reply.inc();
        break;
    }
    this.#logMessage(m, true);
  }

  /** OP_QUERY (Envoy's decodeQuery). */
  #query(m: WireMessage): void {
    const g = this.#f.stats.global;
    this.#tryInjectDelay();
    if (this.#f.emitDynamicMetadata) this.#setMetadata("query", m.ns);
    g.op_query.inc();
    this.#logMessage(m, true);
    if (m.flags & QUERY_FLAG_TAILABLE) g.op_query_tailable_cursor.inc();
    if (m.flags & QUERY_FLAG_NO_CURSOR_TIMEOUT) g.op_query_no_cursor_timeout.inc();
    if (m.flags & QUERY_FLAG_AWAIT_DATA) g.op_query_await_data.inc();
    if (m.flags & QUERY_FLAG_EXHAUST) g.op_query_exhaust.inc();
    this.#f.info.ofQuery(m);
    this.#started(m.requestId, true);
  }

  /** An OP_MSG request: counted as the same operation sent by OP_QUERY on `<db>.$cmd`. */
  #msgRequest(m: WireMessage): void {
    const g = this.#f.stats.global;
    this.#tryInjectDelay();
    g.op_msg.inc();
    g.op_query.inc();
    this.#logMessage(m, true);
    if (m.flags & MsgFlags.ExhaustAllowed) g.op_query_exhaust.inc();
    const info = this.#f.info;
    info.ofMsg(m);
    if (this.#f.emitDynamicMetadata) {
      const c = info.command;
      const op = c === "insert" || c === "update" || c === "delete" ? c : "query";
      const coll = info.isCommand ? msgCollection(m) : info.collection;
      this.#setMetadata(op, `${msgDatabase(m)}.${coll === "" ? "$cmd" : coll}`);
    }
    this.#started(m.requestId, (m.flags & MsgFlags.MoreToCome) === 0);
  }

  /** Counts the classified query (`info`) and, when a reply will come, keeps it active. */
  #started(requestId: number, expectsReply: boolean): void {
    const s = this.#f.stats;
    const info = this.#f.info;
    let command: CommandStats | null = null;
    let collection: CollectionStats | null = null;
    let callsite: QueryStats | null = null;
    if (info.isCommand) {
      command = s.command(info.command);
      command.count();
    } else {
      const type = info.type;
      collection = s.collection(info.collection);
      collection.count(type);
      if (info.callsite !== "") {
        callsite = collection.callsite(info.callsite);
        callsite.count(type);
      }
      if (info.maxTime < 1) s.global.op_query_no_max_time.inc();
      if (type === QueryType.ScatterGet) s.global.op_query_scatter_get.inc();
      else if (type === QueryType.MultiGet) s.global.op_query_multi_get.inc();
    }
    if (!expectsReply) return;
    this.#active.push(
      new ActiveQuery(requestId, this.#f.ctx.clock.monotonic(), command, collection, callsite),
    );
    s.global.op_query_active.inc();
  }

  /** A reply to `responseTo`: records its histograms (unless `numDocs` < 0) and ends its query; drain check. */
  #replied(responseTo: number, numDocs: number, bytes: number): void {
    const active = this.#active;
    for (let i = 0; i < active.length; i++) {
      const q = active[i];
      if (q.requestId !== responseTo) continue;
      if (numDocs >= 0) {
        const ms = Math.floor(this.#f.ctx.clock.monotonic() - q.start);
        if (q.command !== null) q.command.reply.record(numDocs, bytes, ms);
        else {
          q.collection!.reply.record(numDocs, bytes, ms);
          q.callsite?.reply.record(numDocs, bytes, ms);
        }
      }
      active.splice(i, 1);
      this.#f.stats.global.op_query_active.dec();
      break;
    }
    if (active.length === 0 && this.#draining && runtime().featureEnabled(RT_DRAIN_CLOSE_ENABLED, 100)) {
      this.#drainClose();
    }
  }

  /** Closes a draining connection (the reply in flight has been written: onWrite observes written bytes). */
  #drainClose(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#f.stats.global.cx_drain_close.inc();
    this.#conn.close();
  }

  #logMessage(m: WireMessage, full: boolean): void {
    if (this.#log === null || !runtime().featureEnabled(RT_LOGGING_ENABLED, 100)) return;
    this.#log.log(m, full, this.#reply, this.#f.ctx.clock.now(), this.#conn.streamInfo?.upstreamHost ?? "");
  }

  /** Envoy's tryInjectDelay: at most one delay at a time; reads wait for it (onData returns the hold). */
  #tryInjectDelay(): void {
    const f = this.#f;
    if (f.delay === null || this.#hold !== null || this.#closed) return;
    const ms = f.delayMs();
    if (ms <= 0) return;
    this.#hold = new Promise<void>((resolve) => this.#release = resolve);
    this.#delayTimer = f.ctx.clock.setTimer(this.#onDelayEnd ??= () => this.#endDelay(), ms);
    f.stats.global.delays_injected.inc();
  }

  #endDelay(): void {
    if (this.#delayTimer !== undefined) this.#f.ctx.clock.clearTimer(this.#delayTimer);
    this.#delayTimer = undefined;
    const release = this.#release;
    this.#hold = null;
    this.#release = null;
    release?.();
  }

  /** Envoy clears the filter's metadata before decoding each read or write. */
  #clearMetadata(): void {
    const md = this.#conn.streamInfo?.dynamicMetadata;
    if (md && md[METADATA_NAMESPACE] !== undefined) md[METADATA_NAMESPACE] = Object.create(null);
  }

  /** Appends `operation` to the list of `resource` in the connection's dynamic metadata. */
  #setMetadata(operation: string, resource: string): void {
    const si = this.#conn.streamInfo;
    if (!si) return;
    // keys are resources (any text): no prototype
    const ns = (si.dynamicMetadata ??= {})[METADATA_NAMESPACE] ??= Object.create(null);
    ((ns[resource] ??= []) as string[]).push(operation);
  }
}

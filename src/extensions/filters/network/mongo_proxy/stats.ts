/**
 * The mongo proxy's stats under `mongo.<stat_prefix>.`: Envoy's ALL_MONGO_PROXY_STATS (proxy.h), made once per
 * filter config, plus the per-command, per-collection and per-call-site stats (mongo_stats.cc), made the first
 * time Envoy would make them (a counter on its first increment, the reply histograms on the first reply) and
 * then kept in maps owned by the config, so a message builds no stat name. nuncio adds `op_msg`,
 * `op_msg_reply`, `op_compressed` and `op_compressed_reply`.
 */
import type { Counter, Gauge, Histogram, Scope } from "../../../../stats/store.ts";

/** Envoy's fixed counters (and nuncio's op_msg*, op_compressed*) and the op_query_active gauge. */
export class MongoProxyStats {
  readonly cx_destroy_local_with_active_rq: Counter;
  readonly cx_destroy_remote_with_active_rq: Counter;
  readonly cx_drain_close: Counter;
  readonly decoding_error: Counter;
  readonly delays_injected: Counter;
  readonly op_command: Counter;
  readonly op_command_reply: Counter;
  readonly op_get_more: Counter;
  readonly op_insert: Counter;
  readonly op_kill_cursors: Counter;
  readonly op_query: Counter;
  readonly op_query_await_data: Counter;
  readonly op_query_exhaust: Counter;
  readonly op_query_multi_get: Counter;
  readonly op_query_no_cursor_timeout: Counter;
  readonly op_query_no_max_time: Counter;
  readonly op_query_scatter_get: Counter;
  readonly op_query_tailable_cursor: Counter;
  readonly op_reply: Counter;
  readonly op_reply_cursor_not_found: Counter;
  readonly op_reply_query_failure: Counter;
  readonly op_reply_valid_cursor: Counter;
  readonly op_query_active: Gauge;
  readonly op_msg: Counter;
  readonly op_msg_reply: Counter;
  readonly op_compressed: Counter;
  readonly op_compressed_reply: Counter;

  constructor(s: Scope) {
    this.cx_destroy_local_with_active_rq = s.counter("cx_destroy_local_with_active_rq");
    this.cx_destroy_remote_with_active_rq = s.counter("cx_destroy_remote_with_active_rq");
    this.cx_drain_close = s.counter("cx_drain_close");
    this.decoding_error = s.counter("decoding_error");
    this.delays_injected = s.counter("delays_injected");
    this.op_command = s.counter("op_command");
    this.op_command_reply = s.counter("op_command_reply");
    this.op_get_more = s.counter("op_get_more");
    this.op_insert = s.counter("op_insert");
    this.op_kill_cursors = s.counter("op_kill_cursors");
    this.op_query = s.counter("op_query");
    this.op_query_await_data = s.counter("op_query_await_data");
    this.op_query_exhaust = s.counter("op_query_exhaust");
    this.op_query_multi_get = s.counter("op_query_multi_get");
    this.op_query_no_cursor_timeout = s.counter("op_query_no_cursor_timeout");
    this.op_query_no_max_time = s.counter("op_query_no_max_time");
    this.op_query_scatter_get = s.counter("op_query_scatter_get");
    this.op_query_tailable_cursor = s.counter("op_query_tailable_cursor");
    this.op_reply = s.counter("op_reply");
    this.op_reply_cursor_not_found = s.counter("op_reply_cursor_not_found");
    this.op_reply_query_failure = s.counter("op_reply_query_failure");
    this.op_reply_valid_cursor = s.counter("op_reply_valid_cursor");
    this.op_query_active = s.gauge("op_query_active");
    this.op_msg = s.counter("op_msg");
    this.op_msg_reply = s.counter("op_msg_reply");
    this.op_compressed = s.counter("op_compressed");
    this.op_compressed_reply = s.counter("op_compressed_reply");
  }
}

/** The three reply histograms under one prefix (`cmd.<c>.`, `collection.<c>.query.`, ...), made on first use. */
export class ReplyStats {
  #numDocs: Histogram | undefined;
  #size: Histogram | undefined;
  #time: Histogram | undefined;
  constructor(readonly scope: Scope, readonly prefix: string) {}

  /** Records one reply: its document count, their bytes, and the time since the query. */
  record(numDocs: number, bytes: number, ms: number): void {
    if (this.#numDocs === undefined) {
      this.#numDocs = this.scope.histogram(this.prefix + "reply_num_docs", "unspecified");
      this.#size = this.scope.histogram(this.prefix + "reply_size", "bytes");
      this.#time = this.scope.histogram(this.prefix + "reply_time_ms", "ms");
    }
    this.#numDocs.record(numDocs);
    this.#size!.record(bytes);
    this.#time!.record(ms);
  }
}

/** `cmd.<command>.total` and its reply histograms. */
export class CommandStats {
  #total: Counter | undefined;
  readonly reply: ReplyStats;
  constructor(readonly scope: Scope, readonly prefix: string) {
    this.reply = new ReplyStats(scope, prefix);
  }
  /** Counts one command. */
  count(): void {
    (this.#total ??= this.scope.counter(this.prefix + "total")).inc();
  }
}

/** Envoy's query types (utility.h). */
export const QueryType = { PrimaryKey: 0, MultiGet: 1, ScatterGet: 2 } as const;

/** `<prefix>query.{total,scatter_get,multi_get}` and the reply histograms, for a collection or a call site. */
export class QueryStats {
  #total: Counter | undefined;
  #scatter: Counter | undefined;
  #multi: Counter | undefined;
  readonly reply: ReplyStats;
  constructor(readonly scope: Scope, readonly prefix: string) {
    this.reply = new ReplyStats(scope, prefix + "query.");
  }
  /** Counts one query of type `type` (Envoy's chargeQueryStats). */
  count(type: number): void {
    (this.#total ??= this.scope.counter(this.prefix + "query.total")).inc();
    if (type === QueryType.ScatterGet) {
      (this.#scatter ??= this.scope.counter(this.prefix + "query.scatter_get")).inc();
    } else if (type === QueryType.MultiGet) {
      (this.#multi ??= this.scope.counter(this.prefix + "query.multi_get")).inc();
    }
  }
}

/** A collection's query stats and its call sites'. */
export class CollectionStats extends QueryStats {
  readonly #callsites = new Map<string, QueryStats>();
  /** The stats of call site `name` (`collection.<c>.callsite.<name>.`). */
  callsite(name: string): QueryStats {
    let s = this.#callsites.get(name);
    if (s === undefined) {
      this.#callsites.set(name, s = new QueryStats(this.scope, `${this.prefix}callsite.${name}.`));
    }
    return s;
  }
}

/** Envoy's command aliases (utility.cc): the lower-case spellings count under the canonical name. */
export const COMMAND_ALIASES: ReadonlyMap<string, string> = new Map<string, string>([
  ["collstats", "collStats"],
  ["dbstats", "dbStats"],
  ["findandmodify", "findAndModify"],
  ["getlasterror", "getLastError"],
  ["ismaster", "isMaster"],
]);

/** Every stat of one filter config: the fixed ones and the maps of named ones. */
export class MongoStats {
  readonly global: MongoProxyStats;
  readonly #scope: Scope;
  readonly #commands = new Map<string, CommandStats>();
  readonly #unknown: CommandStats;
  readonly #collections = new Map<string, CollectionStats>();

  /** `scope` is `mongo.<stat_prefix>.`; `commands` the names with their own `cmd.<name>.` stats. */
  constructor(scope: Scope, commands: readonly string[]) {
    this.#scope = scope;
    this.global = new MongoProxyStats(scope);
    for (const c of commands) this.#commands.set(c, new CommandStats(scope, `cmd.${c}.`));
    this.#unknown = new CommandStats(scope, "cmd.unknown_command.");
  }

  /** The stats of command `name` (canonical; "" for any other), or `cmd.unknown_command.` when not configured. */
  command(name: string): CommandStats {
    return this.#commands.get(name) ?? this.#unknown;
  }

  /** The stats of collection `name`. */
  collection(name: string): CollectionStats {
    let s = this.#collections.get(name);
    if (s === undefined) {
      this.#collections.set(name, s = new CollectionStats(this.#scope, `collection.${name}.`));
    }
    return s;
  }
}

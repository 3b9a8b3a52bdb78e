/**
 * The commands the redis proxy knows (Envoy's supported_commands.h) and how each is handled, looked up from the
 * request's bytes without building a string: a case-folded FNV-1a hash into a Map, then a byte compare.
 */

/** How a command is served. */
export const Kind = {
  /** Hashes on its first argument, goes to one server. */
  Simple: 0,
  /** EVAL family: hashes on the fourth argument (the first key). */
  Eval: 1,
  /** DEL/EXISTS/TOUCH/UNLINK: one command per key, integer replies summed. */
  Sum: 2,
  /** MGET: one GET per key, the replies joined into an array in order. */
  Mget: 3,
  /** MSET: one SET per pair, OK when all are. */
  Mset: 4,
  /** Answered by the proxy. */
  Ping: 5,
  Echo: 6,
  Time: 7,
  Quit: 8,
  Auth: 9,
  Hello: 10,
  /** MULTI/EXEC/DISCARD: a transaction pinned to one dedicated upstream connection. */
  Transaction: 11,
} as const;
/** One of Kind. */
export type Kind = typeof Kind[keyof typeof Kind];

/** Commands hashing on their first argument (Envoy's simpleCommands()). */
export const SIMPLE_COMMANDS: readonly string[] = [
  "append",
  "bf.add",
  "bf.card",
  "bf.exists",
  "bf.info",
  "bf.insert",
  "bf.loadchunk",
  "bf.madd",
  "bf.mexists",
  "bf.reserve",
  "bf.scandump",
  "bitcount",
  "bitfield",
  "bitpos",
  "decr",
  "decrby",
  "dump",
  "expire",
  "expireat",
  "geoadd",
  "geodist",
  "geohash",
  "geopos",
  "georadius_ro",
  "georadiusbymember_ro",
  "get",
  "getbit",
  "getdel",
  "getrange",
  "getset",
  "hdel",
  "hexists",
  "hget",
  "hgetall",
  "hincrby",
  "hincrbyfloat",
  "hkeys",
  "hlen",
  "hmget",
  "hmset",
  "hscan",
  "hset",
  "hsetnx",
  "hstrlen",
  "hvals",
  "incr",
  "incrby",
  "incrbyfloat",
  "lindex",
  "linsert",
  "llen",
  "lmove",
  "lpop",
  "lpush",
  "lpushx",
  "lrange",
  "lrem",
  "lset",
  "ltrim",
  "persist",
  "pexpire",
  "pexpireat",
  "pfadd",
  "pfcount",
  "psetex",
  "pttl",
  "publish",
  "restore",
  "rpop",
  "rpush",
  "rpushx",
  "sadd",
  "scard",
  "set",
  "setbit",
  "setex",
  "setnx",
  "setrange",
  "sismember",
  "smembers",
  "spop",
  "srandmember",
  "srem",
  "sscan",
  "strlen",
  "ttl",
  "type",
  "watch",
  "xack",
  "xadd",
  "xautoclaim",
  "xclaim",
  "xdel",
  "xlen",
  "xpending",
  "xrange",
  "xrevrange",
  "xtrim",
  "zadd",
  "zcard",
  "zcount",
  "zincrby",
  "zlexcount",
  "zpopmin",
  "zpopmax",
  "zrange",
  "zrangebylex",
  "zrangebyscore",
  "zrank",
  "zrem",
  "zremrangebylex",
  "zremrangebyrank",
  "zremrangebyscore",
  "zrevrange",
  "zrevrangebylex",
  "zrevrangebyscore",
  "zrevrank",
  "zscan",
  "zscore",
];

/** Commands that change data (Envoy's writeCommands()); every other command is a read for mirroring. */
export const WRITE_COMMANDS: ReadonlySet<string> = new Set([
  "append",
  "bitfield",
  "decr",
  "decrby",
  "del",
  "discard",
  "exec",
  "expire",
  "expireat",
  "eval",
  "evalsha",
  "geoadd",
  "getdel",
  "hdel",
  "hincrby",
  "hincrbyfloat",
  "hmset",
  "hset",
  "hsetnx",
  "incr",
  "incrby",
  "incrbyfloat",
  "linsert",
  "lmove",
  "lpop",
  "lpush",
  "lpushx",
  "lrem",
  "lset",
  "ltrim",
  "mset",
  "multi",
  "persist",
  "pexpire",
  "pexpireat",
  "pfadd",
  "psetex",
  "restore",
  "rpop",
  "rpush",
  "rpushx",
  "sadd",
  "set",
  "setbit",
  "setex",
  "setnx",
  "setrange",
  "spop",
  "srem",
  "zadd",
  "zincrby",
  "touch",
  "zpopmin",
  "zpopmax",
  "zrem",
  "zremrangebylex",
  "zremrangebyrank",
  "zremrangebyscore",
  "unlink",
]);

/** One known command. */
export interface CommandInfo {
  /** Lower-case name (the stat name under `command.`). */
  readonly name: string;
  /** Dense index (per-command stats are an array indexed by it). */
  readonly id: number;
  readonly kind: Kind;
  /** True for write commands (mirror policies with exclude_read_commands mirror only these). */
  readonly write: boolean;
  readonly bytes: Uint8Array;
}

const table = new Map<number, CommandInfo[]>();
/** Every known command, by id. */
export const COMMANDS: CommandInfo[] = [];

function add(name: string, kind: Kind): void {
  const bytes = new TextEncoder().encode(name);
  const info: CommandInfo = { name, id: COMMANDS.length, kind, write: WRITE_COMMANDS.has(name), bytes };
  COMMANDS.push(info);
  const h = foldHash(bytes, 0, bytes.length);
  const list = table.get(h);
  if (list) list.push(info);
  else table.set(h, [info]);
}

for (const c of SIMPLE_COMMANDS) add(c, Kind.Simple);
for (const c of ["eval", "evalsha", "eval_ro", "evalsha_ro"]) add(c, Kind.Eval);
for (const c of ["del", "exists", "touch", "unlink"]) add(c, Kind.Sum);
add("mget", Kind.Mget);
add("mset", Kind.Mset);
add("ping", Kind.Ping);
add("echo", Kind.Echo);
add("time", Kind.Time);
add("quit", Kind.Quit);
add("auth", Kind.Auth);
add("hello", Kind.Hello);
for (const c of ["multi", "exec", "discard"]) add(c, Kind.Transaction);

/** FNV-1a over ASCII-lower-cased bytes. */
function foldHash(buf: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) {
    let c = buf[i];
    if (c >= 65 && c <= 90) c += 32;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}

/** The command named by bytes [s, e) (any case), or undefined. */
export function lookupCommand(buf: Uint8Array, s: number, e: number): CommandInfo | undefined {
  if (e - s > 24) return undefined;
  const list = table.get(foldHash(buf, s, e));
  if (list === undefined) return undefined;
  outer: for (let k = 0; k < list.length; k++) {
    const b = list[k].bytes;
    if (b.length !== e - s) continue;
    for (let i = 0; i < b.length; i++) {
      let c = buf[s + i];
      if (c >= 65 && c <= 90) c += 32;
      if (c !== b[i]) continue outer;
    }
    return list[k];
  }
  return undefined;
}

/** True when `name` (lower case) is a read command for mirroring (Envoy: anything not a write). */
export function isReadCommand(name: string): boolean {
  return !WRITE_COMMANDS.has(name);
}

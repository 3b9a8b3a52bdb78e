/**
 * A small but genuine MongoDB server for tests and benchmarks: the real wire protocol (OP_MSG with section
 * kinds 0 and 1, checksum and moreToCome flags; the legacy OP_QUERY/OP_REPLY handshake and the legacy
 * OP_QUERY, OP_GET_MORE, OP_KILL_CURSORS, OP_INSERT, OP_UPDATE, OP_DELETE ops; OP_COMPRESSED with noop or
 * zlib when a client sends it unasked) over in-memory databases, encoded with npm `bson`. It answers the
 * commands the node `mongodb` 7.x driver and pymongo 3.11 issue: hello/isMaster, ping, buildInfo, endSessions,
 * insert, find (filters, sort, skip, limit, batchSize, singleBatch, comment), getMore and cursors,
 * killCursors, update, delete, count, distinct, aggregate ($match, $group, $count, $sort, $skip, $limit,
 * $project), listCollections, listDatabases, create, drop, dropDatabase, createIndexes, getLastError.
 * Errors are MongoDB's: an unknown command is `ok: 0` code 59 CommandNotFound, a duplicate `_id` a write error
 * code 11000. Test hooks: `{sleep: 1, millis: N}` answers after N ms (like mongod's test-only command) and a
 * `find` whose comment mentions "slow" answers after `slowMs`.
 *
 * It advertises wire versions 0..9 (MongoDB 4.4): the node driver 7.x needs a maxWireVersion >= 9, pymongo 3.11
 * accepts 2..9. No compression is advertised. Standalone, for benchmarks:
 *
 *   deno run -A tests/mongo_wire_server.ts [port]     # prints "mongo wire server listening on 127.0.0.1:<port>"
 */
import { BSON, type Document, EJSON, Long, ObjectId } from "bson";
import { inflateSync } from "node:zlib";
import { SYSTEM_PYTHON } from "../tools/peers.ts";

/** Opcodes of the MongoDB wire protocol. */
export const OP = {
  REPLY: 1,
  UPDATE: 2001,
  INSERT: 2002,
  QUERY: 2004,
  GET_MORE: 2005,
  DELETE: 2006,
  KILL_CURSORS: 2007,
  COMPRESSED: 2012,
  MSG: 2013,
} as const;

const OP_NAMES: Record<number, string> = {
  1: "OP_REPLY",
  2001: "OP_UPDATE",
  2002: "OP_INSERT",
  2004: "OP_QUERY",
  2005: "OP_GET_MORE",
  2006: "OP_DELETE",
  2007: "OP_KILL_CURSORS",
  2012: "OP_COMPRESSED",
  2013: "OP_MSG",
};

/** OP_MSG flag bits. */
export const MSG_FLAGS = { checksumPresent: 1, moreToCome: 2, exhaustAllowed: 1 << 16 } as const;

const MAX_MESSAGE = 48_000_000;
const MAX_WIRE_VERSION = 9;
const DEFAULT_BATCH = 101;

/** One request the server received (for test asserts). */
export interface SeenOp {
  /** `OP_MSG`, `OP_QUERY`, ... (the inner op of an OP_COMPRESSED). */
  op: string;
  /** The command name (first key) for commands, `query` for a legacy collection query, else the op. */
  command: string;
  db: string;
  /** Collection, where the request names one. */
  collection?: string;
  /** The comment of a find/aggregate command or `$comment` of a legacy query. */
  comment?: unknown;
  /** The connection's number (1 = first accepted). */
  connection: number;
  /** The filter of a find command or legacy query. */
  filter?: Document;
  /** The OP_MSG had moreToCome (no reply expected). */
  moreToCome?: boolean;
}

/** Counters of what the server received and sent. */
export interface MongoServerStats {
  /** Connections accepted so far. */
  connections: number;
  /** Connections open now. */
  active: number;
  /** Requests per opcode name. */
  ops: Record<string, number>;
  /** Requests per command name (legacy collection queries count as `query`). */
  commands: Record<string, number>;
  /** Replies written (OP_MSG or OP_REPLY). */
  replies: number;
  /** Replies written per opcode name (`OP_MSG`, `OP_REPLY`). */
  replyOps: Record<string, number>;
}

/** Options of startMongoServer. */
export interface MongoServerOptions {
  hostname?: string;
  /** 0 (default): picked by the OS. */
  port?: number;
  /** Delay of a find whose comment mentions "slow" (default 500 ms). */
  slowMs?: number;
  /** Keep at most this many SeenOp entries (default 10,000; 0 keeps none: for benchmarks). */
  logLimit?: number;
}

/** A running server. */
export interface MongoServer extends AsyncDisposable {
  port: number;
  stats: MongoServerStats;
  /** Requests in arrival order (bounded by `logLimit`). */
  log: SeenOp[];
  /** Databases: name -> collection name -> documents by `_id` key (inspect in tests). */
  databases: Map<string, Map<string, Map<string, Document>>>;
  /** Replies being held back right now (`sleep`, slow finds). */
  readonly delayed: number;
  /** Stops accepting, closes every connection, cancels pending delays. */
  close(): Promise<void>;
}

/** A MongoDB command error (`ok: 0`). */
export class MongoCommandError extends Error {
  constructor(readonly code: number, readonly codeName: string, message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Values: comparison, equality, paths

type Collection = Map<string, Document>;

function bsonType(v: unknown): string | undefined {
  return v !== null && typeof v === "object" ? (v as { _bsontype?: string })._bsontype : undefined;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  const t = bsonType(v);
  if (t === "Long") return (v as Long).toNumber();
  if (t === "Int32" || t === "Double") return (v as { value: number }).value;
  if (t === "Decimal128") return Number(v!.toString());
  return undefined;
}

/** Canonical key of a value (for `_id` uniqueness and group keys). */
function valueKey(v: unknown): string {
  const n = toNumber(v);
  if (n !== undefined) return `n:${n}`;
  if (typeof v === "string") return `s:${v}`;
  if (v === undefined) return "u";
  return EJSON.stringify({ v }, { relaxed: false });
}

/** BSON canonical type order for comparisons of mixed types. */
function typeRank(v: unknown): number {
  if (v === undefined || v === null) return 1;
  if (toNumber(v) !== undefined) return 2;
  if (typeof v === "string" || bsonType(v) === "BSONSymbol") return 3;
  if (Array.isArray(v)) return 5;
  const t = bsonType(v);
  if (t === "Binary") return 6;
  if (t === "ObjectId") return 7;
  if (typeof v === "boolean") return 8;
  if (v instanceof Date) return 9;
  if (t === "Timestamp") return 10;
  if (t === "BSONRegExp" || v instanceof RegExp) return 11;
  return 4; // documents
}

function compare(a: unknown, b: unknown): number {
  const ra = typeRank(a), rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 1:
      return 0;
    case 2: {
      const x = toNumber(a)!, y = toNumber(b)!;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 3:
      return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
    case 5: {
      const x = a as unknown[], y = b as unknown[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compare(x[i], y[i]);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 7: {
      const x = (a as ObjectId).toHexString(), y = (b as ObjectId).toHexString();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 8:
      return Number(a) - Number(b);
    case 9:
      return (a as Date).getTime() - (b as Date).getTime();
    case 4: {
      const x = Object.entries(a as Document), y = Object.entries(b as Document);
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        if (x[i][0] !== y[i][0]) return x[i][0] < y[i][0] ? -1 : 1;
        const c = compare(x[i][1], y[i][1]);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    default: {
      const x = valueKey(a), y = valueKey(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
  }
}

function equal(a: unknown, b: unknown): boolean {
  return typeRank(a) === typeRank(b) && compare(a, b) === 0;
}

/** Values at a dotted path; arrays on the way fan out (MongoDB's implicit array traversal). */
function pathValues(doc: unknown, path: string): unknown[] {
  let cur: unknown[] = [doc];
  for (const part of path.split(".")) {
    const next: unknown[] = [];
    for (const c of cur) {
      if (Array.isArray(c)) {
        if (/^\d+$/.test(part)) {
          if (Number(part) < c.length) next.push(c[Number(part)]);
        } else {
          for (const e of c) {
            if (e !== null && typeof e === "object" && !Array.isArray(e) && part in e) {
              next.push((e as Document)[part]);
            }
          }
        }
      } else if (c !== null && typeof c === "object" && !bsonType(c) && !(c instanceof Date)) {
        if (part in (c as Document)) next.push((c as Document)[part]);
      }
    }
    cur = next;
  }
  return cur;
}

function getPath(doc: unknown, path: string): unknown {
  return pathValues(doc, path)[0];
}

function isOperatorDoc(v: unknown): v is Document {
  if (v === null || typeof v !== "object" || Array.isArray(v) || bsonType(v) || v instanceof Date) {
    return false;
  }
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k.startsWith("$"));
}

function isPlainDoc(v: unknown): v is Document {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !bsonType(v) && !(v instanceof Date) &&
    !(v instanceof RegExp);
}

function toRegExp(v: unknown, options?: unknown): RegExp | undefined {
  if (v instanceof RegExp) return v;
  if (bsonType(v) === "BSONRegExp") {
    const r = v as { pattern: string; options: string };
    return new RegExp(r.pattern, r.options.replace(/[^imsu]/g, ""));
  }
  if (typeof v === "string" && options !== undefined) {
    return new RegExp(v, String(options).replace(/[^imsu]/g, ""));
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Query matching

function matchValue(values: unknown[], cond: unknown): boolean {
  if (isOperatorDoc(cond)) {
    return Object.entries(cond).every(([op, arg]) => matchOperator(values, op, arg, cond));
  }
  const re = toRegExp(cond);
  if (re) return expand(values).some((v) => typeof v === "string" && re.test(v));
  if (cond === null) return values.length === 0 || expand(values).some((v) => v === null || v === undefined);
  return values.some((v) => equal(v, cond)) || expand(values).some((v) => equal(v, cond));
}

/** The values plus the elements of array values (a condition on a field matches any element). */
function expand(values: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const v of values) {
    if (Array.isArray(v)) out.push(...v);
    else out.push(v);
  }
  return out;
}

function matchOperator(values: unknown[], op: string, arg: unknown, all: Document): boolean {
  const ex = expand(values);
  switch (op) {
    case "$eq":
      return matchValue(values, arg);
    case "$ne":
      return !matchValue(values, arg);
    case "$gt":
      return ex.some((v) => typeRank(v) === typeRank(arg) && compare(v, arg) > 0);
    case "$gte":
      return ex.some((v) => typeRank(v) === typeRank(arg) && compare(v, arg) >= 0);
    case "$lt":
      return ex.some((v) => typeRank(v) === typeRank(arg) && compare(v, arg) < 0);
    case "$lte":
      return ex.some((v) => typeRank(v) === typeRank(arg) && compare(v, arg) <= 0);
    case "$in":
      return (arg as unknown[]).some((a) => matchValue(values, a));
    case "$nin":
      return !(arg as unknown[]).some((a) => matchValue(values, a));
    case "$exists":
      return (values.length > 0) === Boolean(arg);
    case "$size":
      return values.some((v) => Array.isArray(v) && v.length === toNumber(arg));
    case "$all":
      return (arg as unknown[]).every((a) => matchValue(values, a));
    case "$not":
      return !matchValue(values, arg);
    case "$elemMatch":
      return values.some((v) =>
        Array.isArray(v) &&
        v.some((e) => isOperatorDoc(arg) ? matchValue([e], arg) : matches(e as Document, arg as Document))
      );
    case "$regex": {
      const re = toRegExp(arg, all.$options ?? "")!;
      return ex.some((v) => typeof v === "string" && re.test(v));
    }
    case "$options":
      return true;
    case "$type":
      return ex.some((v) => typeName(v) === arg || (arg === "number" && toNumber(v) !== undefined));
    default:
      throw new MongoCommandError(2, "BadValue", `unknown operator: ${op}`);
  }
}

function typeName(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof Date) return "date";
  const t = bsonType(v);
  if (t === "ObjectId") return "objectId";
  if (t === "Long") return "long";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "double";
  return "object";
}

/** Does `doc` match the query `filter`? */
export function matches(doc: Document, filter: Document | undefined): boolean {
  if (!filter) return true;
  for (const [k, cond] of Object.entries(filter)) {
    switch (k) {
      case "$and":
        if (!(cond as Document[]).every((f) => matches(doc, f))) return false;
        continue;
      case "$or":
        if (!(cond as Document[]).some((f) => matches(doc, f))) return false;
        continue;
      case "$nor":
        if ((cond as Document[]).some((f) => matches(doc, f))) return false;
        continue;
      case "$comment":
        continue;
    }
    if (k.startsWith("$")) throw new MongoCommandError(2, "BadValue", `unknown top level operator: ${k}`);
    if (!matchValue(pathValues(doc, k), cond)) return false;
  }
  return true;
}

function sortDocs(docs: Document[], spec: Document | undefined): Document[] {
  if (!spec || Object.keys(spec).length === 0) return docs;
  const keys = Object.entries(spec).map(([k, d]) => [k, toNumber(d)! < 0 ? -1 : 1] as const);
  return [...docs].sort((a, b) => {
    for (const [k, dir] of keys) {
      const c = compare(getPath(a, k), getPath(b, k));
      if (c !== 0) return c * dir;
    }
    return 0;
  });
}

function project(doc: Document, spec: Document | undefined): Document {
  if (!spec || Object.keys(spec).length === 0) return doc;
  const entries = Object.entries(spec);
  const truthy = (v: unknown) => v === true || (toNumber(v) ?? 0) > 0 || typeof v === "string";
  const inclusive = entries.some(([k, v]) => k !== "_id" && truthy(v)) ||
    entries.every(([k, v]) => k === "_id" && truthy(v));
  const out: Document = {};
  if (inclusive) {
    if (spec._id === undefined || truthy(spec._id)) {
      if ("_id" in doc) out._id = doc._id;
    }
    for (const [k, v] of entries) {
      if (k === "_id") continue;
      if (typeof v === "string" && v.startsWith("$")) {
        out[k] = getPath(doc, v.slice(1));
      } else if (truthy(v)) {
        const val = getPath(doc, k);
        if (val !== undefined) setPath(out, k, val);
      }
    }
    return out;
  }
  const copy = structuredCloneDoc(doc);
  for (const [k] of entries) unsetPath(copy, k);
  return copy;
}

function structuredCloneDoc(doc: Document): Document {
  return BSON.deserialize(BSON.serialize(doc), { promoteValues: true });
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur: Document = doc;
  for (const p of parts.slice(0, -1)) {
    if (!isPlainDoc(cur[p]) && !Array.isArray(cur[p])) cur[p] = {};
    cur = cur[p] as Document;
  }
  cur[parts.at(-1)!] = value;
}

function unsetPath(doc: Document, path: string): void {
  const parts = path.split(".");
  let cur: Document | undefined = doc;
  for (const p of parts.slice(0, -1)) {
    cur = isPlainDoc(cur?.[p]) || Array.isArray(cur?.[p]) ? cur![p] as Document : undefined;
    if (!cur) return;
  }
  delete cur[parts.at(-1)!];
}

// ---------------------------------------------------------------------------------------------------------------
// Updates

function applyUpdate(doc: Document, update: Document | Document[], isInsert: boolean): Document {
  if (Array.isArray(update)) {
    throw new MongoCommandError(2, "BadValue", "pipeline updates are not supported by this test server");
  }
  const keys = Object.keys(update);
  if (keys.length === 0 || !keys[0].startsWith("$")) {
    // replacement: keeps _id
    const out: Document = { _id: doc._id };
    for (const [k, v] of Object.entries(update)) if (k !== "_id") out[k] = v;
    return out;
  }
  const out = structuredCloneDoc(doc);
  for (const [op, fields] of Object.entries(update)) {
    for (const [path, arg] of Object.entries(fields as Document)) {
      switch (op) {
        case "$set":
          setPath(out, path, arg);
          break;
        case "$setOnInsert":
          if (isInsert) setPath(out, path, arg);
          break;
        case "$unset":
          unsetPath(out, path);
          break;
        case "$inc": {
          const cur = toNumber(getPath(out, path)) ?? 0;
          setPath(out, path, cur + toNumber(arg)!);
          break;
        }
        case "$mul": {
          const cur = toNumber(getPath(out, path)) ?? 0;
          setPath(out, path, cur * toNumber(arg)!);
          break;
        }
        case "$max":
        case "$min": {
          const cur = getPath(out, path);
          const c = cur === undefined ? 0 : compare(arg, cur);
          if (cur === undefined || (op === "$max" ? c > 0 : c < 0)) setPath(out, path, arg);
          break;
        }
        case "$push":
        case "$addToSet": {
          const cur = getPath(out, path);
          const arr = Array.isArray(cur) ? [...cur] : [];
          const items = isPlainDoc(arg) && Array.isArray(arg.$each) ? arg.$each as unknown[] : [arg];
          for (const it of items) if (op === "$push" || !arr.some((e) => equal(e, it))) arr.push(it);
          setPath(out, path, arr);
          break;
        }
        case "$pull": {
          const cur = getPath(out, path);
          if (Array.isArray(cur)) {
            setPath(
              out,
              path,
              cur.filter((e) => !(isPlainDoc(arg) ? matchValue([e], arg) : equal(e, arg))),
            );
          }
          break;
        }
        default:
          throw new MongoCommandError(9, "FailedToParse", `Unknown modifier: ${op}`);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Aggregation

function evalExpr(doc: Document, e: unknown): unknown {
  if (typeof e === "string" && e.startsWith("$")) return getPath(doc, e.slice(1));
  if (isPlainDoc(e)) {
    const keys = Object.keys(e);
    if (keys.length === 1 && keys[0].startsWith("$")) {
      const args = (Array.isArray(e[keys[0]]) ? e[keys[0]] : [e[keys[0]]]) as unknown[];
      const vals = args.map((a) => evalExpr(doc, a));
      switch (keys[0]) {
        case "$add":
          return vals.reduce((s: number, v) => s + (toNumber(v) ?? 0), 0);
        case "$multiply":
          return vals.reduce((s: number, v) => s * (toNumber(v) ?? 0), 1);
        case "$toLower":
          return String(vals[0] ?? "").toLowerCase();
        case "$toUpper":
          return String(vals[0] ?? "").toUpperCase();
        case "$literal":
          return args[0];
        default:
          throw new MongoCommandError(168, "InvalidPipelineOperator", `Unrecognized expression '${keys[0]}'`);
      }
    }
    const out: Document = {};
    for (const [k, v] of Object.entries(e)) out[k] = evalExpr(doc, v);
    return out;
  }
  return e;
}

function group(docs: Document[], spec: Document): Document[] {
  const groups = new Map<string, { id: unknown; acc: Document; n: Map<string, number> }>();
  const accs = Object.entries(spec).filter(([k]) => k !== "_id");
  for (const doc of docs) {
    const id = evalExpr(doc, spec._id);
    const key = valueKey(id ?? null);
    let g = groups.get(key);
    if (!g) {
      g = { id: id ?? null, acc: {}, n: new Map() };
      groups.set(key, g);
    }
    for (const [field, accSpec] of accs) {
      const [op, arg] = Object.entries(accSpec as Document)[0];
      const v = evalExpr(doc, arg);
      const cur = g.acc[field];
      switch (op) {
        case "$sum":
          g.acc[field] = (toNumber(cur) ?? 0) + (toNumber(v) ?? 0);
          break;
        case "$avg":
          g.n.set(field, (g.n.get(field) ?? 0) + 1);
          g.acc[field] = (toNumber(cur) ?? 0) + (toNumber(v) ?? 0);
          break;
        case "$min":
          if (cur === undefined || compare(v, cur) < 0) g.acc[field] = v;
          break;
        case "$max":
          if (cur === undefined || compare(v, cur) > 0) g.acc[field] = v;
          break;
        case "$first":
          if (!(field in g.acc)) g.acc[field] = v;
          break;
        case "$last":
          g.acc[field] = v;
          break;
        case "$push":
          g.acc[field] = [...((cur as unknown[]) ?? []), v];
          break;
        case "$addToSet": {
          const arr = (cur as unknown[]) ?? [];
          g.acc[field] = arr.some((e) => equal(e, v)) ? arr : [...arr, v];
          break;
        }
        default:
          throw new MongoCommandError(15952, "Location15952", `unknown group operator '${op}'`);
      }
    }
  }
  return [...groups.values()].map((g) => {
    const out: Document = { _id: g.id };
    for (const [field] of accs) {
      const n = g.n.get(field);
      out[field] = n ? (g.acc[field] as number) / n : g.acc[field];
    }
    return out;
  });
}

function runPipeline(input: Document[], pipeline: Document[]): Document[] {
  let docs = input;
  for (const stage of pipeline) {
    const [name, arg] = Object.entries(stage)[0] ?? [];
    switch (name) {
      case "$match":
        docs = docs.filter((d) => matches(d, arg as Document));
        break;
      case "$sort":
        docs = sortDocs(docs, arg as Document);
        break;
      case "$skip":
        docs = docs.slice(toNumber(arg));
        break;
      case "$limit":
        docs = docs.slice(0, toNumber(arg));
        break;
      case "$count":
        docs = docs.length > 0 ? [{ [arg as string]: docs.length }] : [];
        break;
      case "$group":
        docs = group(docs, arg as Document);
        break;
      case "$project":
        docs = docs.map((d) => project(d, arg as Document));
        break;
      case "$addFields":
      case "$set":
        docs = docs.map((d) => {
          const out = { ...d };
          for (const [k, v] of Object.entries(arg as Document)) setPath(out, k, evalExpr(d, v));
          return out;
        });
        break;
      case "$unset":
        docs = docs.map((d) => {
          const out = structuredCloneDoc(d);
          for (const k of Array.isArray(arg) ? arg : [arg]) unsetPath(out, String(k));
          return out;
        });
        break;
      default:
        throw new MongoCommandError(40324, "Location40324", `Unrecognized pipeline stage name: '${name}'`);
    }
  }
  return docs;
}

// ---------------------------------------------------------------------------------------------------------------
// Wire encoding

function readCString(b: Uint8Array, off: number): [string, number] {
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  if (end >= b.length) throw new Error("Unterminated cstring");
  return [new TextDecoder().decode(b.subarray(off, end)), end + 1];
}

function readDoc(b: Uint8Array, off: number): [Document, number] {
  if (off + 5 > b.length) throw new Error("Truncated document");
  const size = new DataView(b.buffer, b.byteOffset + off, 4).getInt32(0, true);
  if (size < 5 || off + size > b.length) throw new Error("Bad document size");
  return [
    BSON.deserialize(b.subarray(off, off + size), { promoteLongs: true, promoteValues: true }),
    off + size,
  ];
}

let nextRequestId = 1;

function header(len: number, responseTo: number, opCode: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setInt32(0, len, true);
  v.setInt32(4, nextRequestId++ & 0x7fffffff, true);
  v.setInt32(8, responseTo, true);
  v.setInt32(12, opCode, true);
  return h;
}

/** An OP_MSG carrying one kind-0 section. */
export function encodeOpMsg(doc: Document, responseTo: number, flags = 0): Uint8Array {
  const body = BSON.serialize(doc, { ignoreUndefined: true });
  const out = new Uint8Array(16 + 4 + 1 + body.length);
  out.set(header(out.length, responseTo, OP.MSG));
  new DataView(out.buffer).setUint32(16, flags, true);
  out[20] = 0;
  out.set(body, 21);
  return out;
}

/** An OP_REPLY. */
export function encodeOpReply(
  docs: Document[],
  responseTo: number,
  o: { flags?: number; cursorId?: number; startingFrom?: number } = {},
): Uint8Array {
  const bodies = docs.map((d) => BSON.serialize(d, { ignoreUndefined: true }));
  const len = 16 + 20 + bodies.reduce((s, b) => s + b.length, 0);
  const out = new Uint8Array(len);
  out.set(header(len, responseTo, OP.REPLY));
  const v = new DataView(out.buffer);
  v.setInt32(16, o.flags ?? 0, true);
  v.setBigInt64(20, BigInt(o.cursorId ?? 0), true);
  v.setInt32(28, o.startingFrom ?? 0, true);
  v.setInt32(32, docs.length, true);
  let off = 36;
  for (const b of bodies) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The server

interface Cursor {
  id: number;
  ns: string;
  docs: Document[];
  pos: number;
}

interface ConnState {
  id: number;
  conn: Deno.Conn;
  lastError: Document;
}

interface Request {
  opCode: number;
  requestId: number;
  body: Uint8Array;
  state: ConnState;
  compressed: boolean;
}

const OK = { ok: 1 };

class Server {
  readonly databases = new Map<string, Map<string, Collection>>();
  readonly cursors = new Map<number, Cursor>();
  readonly log: SeenOp[] = [];
  readonly stats: MongoServerStats = {
    connections: 0,
    active: 0,
    ops: {},
    commands: {},
    replies: 0,
    replyOps: {},
  };
  readonly conns = new Set<Deno.Conn>();
  readonly tasks = new Set<Promise<void>>();
  readonly timers = new Set<{ id: ReturnType<typeof setTimeout> | undefined; resolve: () => void }>();
  #nextCursor = 1000;
  #closed = false;

  constructor(readonly listener: Deno.Listener, readonly opts: MongoServerOptions) {}

  get delayed(): number {
    return this.timers.size;
  }

  async acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.listener.accept();
      } catch {
        return;
      }
      if (this.#closed) {
        conn.close();
        return;
      }
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // not a TCP connection
      }
      this.stats.connections++;
      this.stats.active++;
      this.conns.add(conn);
      const state: ConnState = { id: this.stats.connections, conn, lastError: { n: 0, err: null, ok: 1 } };
      const t: Promise<void> = this.serve(state).catch(() => {}).finally(() => {
        this.stats.active--;
        this.conns.delete(conn);
        this.tasks.delete(t);
        try {
          conn.close();
        } catch {
          // closed already
        }
      });
      this.tasks.add(t);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.listener.close();
    } catch {
      // closed already
    }
    for (const t of this.timers) {
      clearTimeout(t.id);
      t.resolve();
    }
    this.timers.clear();
    for (const c of this.conns) {
      try {
        c.close();
      } catch {
        // closed already
      }
    }
    await Promise.all([...this.tasks]);
  }

  /** Sleeps, unless the server closes first. */
  sleep(ms: number): Promise<void> {
    if (this.#closed || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = {
        id: undefined as ReturnType<typeof setTimeout> | undefined,
        resolve: () => {
          this.timers.delete(t);
          resolve();
        },
      };
      t.id = setTimeout(t.resolve, ms);
      this.timers.add(t);
    });
  }

  /** Reads messages (which may span reads or share one) and answers each in order. */
  async serve(state: ConnState): Promise<void> {
    const conn = state.conn;
    let buf = new Uint8Array(64 * 1024);
    let start = 0, end = 0;
    for (;;) {
      // parse every complete message in [start, end)
      while (end - start >= 4) {
        const len = new DataView(buf.buffer, start, 4).getInt32(0, true);
        if (len < 16 || len > MAX_MESSAGE) return; // garbage: drop the connection like mongod
        if (end - start < len) {
          if (len > buf.length - start) {
            const bigger = new Uint8Array(Math.max(buf.length * 2, len));
            bigger.set(buf.subarray(start, end));
            end -= start;
            start = 0;
            buf = bigger;
          }
          break;
        }
        const msg = buf.slice(start, start + len);
        start += len;
        const v = new DataView(msg.buffer);
        const req: Request = {
          requestId: v.getInt32(4, true),
          opCode: v.getInt32(12, true),
          body: msg.subarray(16),
          state,
          compressed: false,
        };
        const reply = await this.handle(req);
        if (reply) {
          await writeAll(conn, reply);
          this.stats.replies++;
          const op = new DataView(reply.buffer, reply.byteOffset).getInt32(12, true) === OP.MSG
            ? "OP_MSG"
            : "OP_REPLY";
          this.stats.replyOps[op] = (this.stats.replyOps[op] ?? 0) + 1;
        }
        if (this.#closed) return;
      }
      if (start === end) start = end = 0;
      else if (end === buf.length) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      const n = await conn.read(buf.subarray(end));
      if (n === null) return;
      end += n;
    }
  }

  #seen(op: SeenOp): void {
    const limit = this.opts.logLimit ?? 10_000;
    if (this.log.length < limit) this.log.push(op);
    this.stats.commands[op.command] = (this.stats.commands[op.command] ?? 0) + 1;
  }

  async handle(req: Request): Promise<Uint8Array | null> {
    if (req.opCode === OP.COMPRESSED) {
      const v = new DataView(req.body.buffer, req.body.byteOffset);
      const original = v.getInt32(0, true);
      const size = v.getInt32(4, true);
      const compressor = req.body[8];
      const data = req.body.subarray(9);
      let plain: Uint8Array;
      if (compressor === 0) plain = data;
      else if (compressor === 2) plain = new Uint8Array(inflateSync(data));
      else return null; // snappy/zstd were never negotiated
      if (plain.length !== size) return null;
      this.stats.ops.OP_COMPRESSED = (this.stats.ops.OP_COMPRESSED ?? 0) + 1;
      return await this.handle({ ...req, opCode: original, body: plain, compressed: true });
    }
    const name = OP_NAMES[req.opCode] ?? `OP_${req.opCode}`;
    this.stats.ops[name] = (this.stats.ops[name] ?? 0) + 1;
    switch (req.opCode) {
      case OP.MSG:
        return await this.#opMsg(req);
      case OP.QUERY:
        return await this.#opQuery(req);
      case OP.GET_MORE:
        return this.#opGetMore(req);
      case OP.KILL_CURSORS: {
        const v = new DataView(req.body.buffer, req.body.byteOffset);
        const n = v.getInt32(4, true);
        for (let i = 0; i < n; i++) this.cursors.delete(Number(v.getBigInt64(8 + 8 * i, true)));
        this.#seen({ op: name, command: "killCursors", db: "", connection: req.state.id });
        return null;
      }
      case OP.INSERT:
      case OP.UPDATE:
      case OP.DELETE:
        this.#legacyWrite(req);
        return null;
      default:
        return null; // unknown opcode: mongod closes; ignoring is kinder to tests
    }
  }

  // ---- OP_MSG

  async #opMsg(req: Request): Promise<Uint8Array | null> {
    const b = req.body;
    const flags = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
    const endSections = flags & MSG_FLAGS.checksumPresent ? b.length - 4 : b.length;
    let off = 4;
    let cmd: Document | undefined;
    const sequences: [string, Document[]][] = [];
    while (off < endSections) {
      const kind = b[off++];
      if (kind === 0) {
        [cmd, off] = readDoc(b, off);
      } else if (kind === 1) {
        const size = new DataView(b.buffer, b.byteOffset + off).getInt32(0, true);
        const secEnd = off + size;
        const [ident, start] = readCString(b, off + 4);
        let p = start;
        const docs: Document[] = [];
        while (p < secEnd) {
          let d: Document;
          [d, p] = readDoc(b, p);
          docs.push(d);
        }
        sequences.push([ident, docs]);
        off = secEnd;
      } else {
        throw new Error(`Unknown OP_MSG section kind ${kind}`);
      }
    }
    if (!cmd) return null;
    for (const [ident, docs] of sequences) cmd[ident] = docs;
    const moreToCome = (flags & MSG_FLAGS.moreToCome) !== 0;
    const db = String(cmd.$db ?? "admin");
    const reply = await this.command(db, cmd, req, "OP_MSG", moreToCome);
    if (moreToCome) return null;
    return encodeOpMsg(reply, req.requestId);
  }

  // ---- legacy OP_QUERY (handshake, commands, collection queries)

  async #opQuery(req: Request): Promise<Uint8Array> {
    const b = req.body;
    const v = new DataView(b.buffer, b.byteOffset);
    const [ns, p] = readCString(b, 4); // after the flags (tailable, slaveOk, ...: not needed here)
    const skip = v.getInt32(p, true);
    const numberToReturn = v.getInt32(p + 4, true);
    const [query, p2] = readDoc(b, p + 8);
    const projection = p2 < b.length ? readDoc(b, p2)[0] : undefined;
    const dot = ns.indexOf(".");
    const db = ns.slice(0, dot);
    const coll = ns.slice(dot + 1);
    if (coll === "$cmd" || coll.startsWith("$cmd.")) {
      const cmd = isPlainDoc(query.$query) ? query.$query as Document : query;
      const reply = await this.command(db, cmd, req, "OP_QUERY", false);
      return encodeOpReply([reply], req.requestId, { flags: 8 });
    }
    // a legacy find
    const filter = "$query" in query ? query.$query as Document : query;
    const comment = query.$comment;
    this.#seen({
      op: "OP_QUERY",
      command: "query",
      db,
      collection: coll,
      comment,
      filter,
      connection: req.state.id,
    });
    try {
      let docs = [...this.#coll(db, coll, false)?.values() ?? []].filter((d) => matches(d, filter));
      docs = sortDocs(docs, (query.$orderby ?? query.orderby) as Document | undefined);
      docs = docs.slice(skip).map((d) => project(d, projection));
      if (typeof comment === "string" && comment.includes("slow")) await this.sleep(this.opts.slowMs ?? 500);
      const single = numberToReturn < 0 || numberToReturn === 1;
      const batch = numberToReturn === 0 ? DEFAULT_BATCH : Math.abs(numberToReturn);
      const first = docs.slice(0, batch);
      let cursorId = 0;
      if (!single && docs.length > batch) {
        cursorId = this.#nextCursor++;
        this.cursors.set(cursorId, { id: cursorId, ns, docs, pos: batch });
      }
      return encodeOpReply(first, req.requestId, { cursorId });
    } catch (err) {
      const e = err instanceof MongoCommandError ? err : new MongoCommandError(8000, "Unknown", String(err));
      return encodeOpReply([{ $err: e.message, code: e.code }], req.requestId, { flags: 2 });
    }
  }

  #opGetMore(req: Request): Uint8Array {
    const b = req.body;
    const v = new DataView(b.buffer, b.byteOffset);
    const [ns, p] = readCString(b, 4);
    const numberToReturn = v.getInt32(p, true);
    const id = Number(v.getBigInt64(p + 4, true));
    const dot = ns.indexOf(".");
    this.#seen({
      op: "OP_GET_MORE",
      command: "getMore",
      db: ns.slice(0, dot),
      collection: ns.slice(dot + 1),
      connection: req.state.id,
    });
    const c = this.cursors.get(id);
    if (!c) return encodeOpReply([], req.requestId, { flags: 1, cursorId: 0 });
    const n = numberToReturn === 0 ? c.docs.length : Math.abs(numberToReturn);
    const startingFrom = c.pos;
    const batch = c.docs.slice(c.pos, c.pos + n);
    c.pos += batch.length;
    const done = c.pos >= c.docs.length;
    if (done) this.cursors.delete(id);
    return encodeOpReply(batch, req.requestId, { cursorId: done ? 0 : id, startingFrom });
  }

  #legacyWrite(req: Request): void {
    const b = req.body;
    const v = new DataView(b.buffer, b.byteOffset);
    const [ns, p] = readCString(b, 4); // after the flags (OP_INSERT) or ZERO (OP_UPDATE, OP_DELETE)
    const dot = ns.indexOf(".");
    const db = ns.slice(0, dot), coll = ns.slice(dot + 1);
    const command = req.opCode === OP.INSERT ? "insert" : req.opCode === OP.UPDATE ? "update" : "delete";
    this.#seen({ op: OP_NAMES[req.opCode], command, db, collection: coll, connection: req.state.id });
    try {
      if (req.opCode === OP.INSERT) {
        const docs: Document[] = [];
        let off = p;
        while (off < b.length) {
          let d: Document;
          [d, off] = readDoc(b, off);
          docs.push(d);
        }
        const r = this.#insert(db, coll, docs, (v.getInt32(0, true) & 1) === 0);
        req.state.lastError = r.writeErrors
          ? { n: 0, err: (r.writeErrors as Document[])[0].errmsg, code: 11000, ok: 1 }
          : { n: 0, err: null, ok: 1 };
      } else if (req.opCode === OP.UPDATE) {
        const flags = v.getInt32(p, true);
        const [q, p2] = readDoc(b, p + 4);
        const [u] = readDoc(b, p2);
        const r = this.#update(
          db,
          coll,
          [{ q, u, upsert: (flags & 1) !== 0, multi: (flags & 2) !== 0 }],
          true,
        );
        req.state.lastError = { n: r.n, updatedExisting: (r.nModified as number) > 0, err: null, ok: 1 };
      } else {
        const flags = v.getInt32(p, true);
        const [q] = readDoc(b, p + 4);
        const r = this.#delete(db, coll, [{ q, limit: flags & 1 ? 1 : 0 }]);
        req.state.lastError = { n: r.n, err: null, ok: 1 };
      }
    } catch (err) {
      req.state.lastError = { n: 0, err: String(err), ok: 1 };
    }
  }

  // ---- commands

  #coll(db: string, name: string, create: true): Collection;
  #coll(db: string, name: string, create: boolean): Collection | undefined;
  #coll(db: string, name: string, create: boolean): Collection | undefined {
    let d = this.databases.get(db);
    if (!d) {
      if (!create) return undefined;
      d = new Map();
      this.databases.set(db, d);
    }
    let c = d.get(name);
    if (!c && create) {
      c = new Map();
      d.set(name, c);
    }
    return c;
  }

  /** Runs one command document; always returns the reply document (errors as `ok: 0`). */
  async command(db: string, cmd: Document, req: Request, op: string, moreToCome: boolean): Promise<Document> {
    const name = Object.keys(cmd)[0] ?? "";
    const collection = typeof cmd[name] === "string" ? cmd[name] as string : undefined;
    this.#seen({
      op: req.compressed ? `${op}(compressed)` : op,
      command: name,
      db,
      collection,
      comment: cmd.comment,
      ...(name === "find" ? { filter: cmd.filter ?? {} } : {}),
      connection: req.state.id,
      ...(moreToCome ? { moreToCome } : {}),
    });
    try {
      return await this.#run(name, db, cmd, req);
    } catch (err) {
      if (err instanceof MongoCommandError) {
        return { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName };
      }
      return { ok: 0, errmsg: String(err), code: 1, codeName: "InternalError" };
    }
  }

  async #run(name: string, db: string, cmd: Document, req: Request): Promise<Document> {
    switch (name) {
      case "hello":
      case "isMaster":
      case "ismaster":
        return {
          ...(cmd.helloOk ? { helloOk: true } : {}),
          ismaster: true,
          ...(name === "hello" ? { isWritablePrimary: true } : {}),
          maxBsonObjectSize: 16 * 1024 * 1024,
          maxMessageSizeBytes: MAX_MESSAGE,
          maxWriteBatchSize: 100_000,
          localTime: new Date(),
          logicalSessionTimeoutMinutes: 30,
          connectionId: req.state.id,
          minWireVersion: 0,
          maxWireVersion: MAX_WIRE_VERSION,
          readOnly: false,
          ok: 1,
        };
      case "ping":
        return OK;
      case "buildInfo":
      case "buildinfo":
        return {
          version: "4.4.0",
          gitVersion: "nuncio-test-server",
          versionArray: [4, 4, 0, 0],
          bits: 64,
          maxBsonObjectSize: 16 * 1024 * 1024,
          ok: 1,
        };
      case "whatsmyuri":
        return { you: "127.0.0.1:0", ok: 1 };
      case "getLastError":
      case "getlasterror":
        return req.state.lastError;
      case "endSessions":
      case "killSessions":
      case "refreshSessions":
      case "startSession":
        return OK;
      case "getParameter":
        return { featureCompatibilityVersion: { version: "4.4" }, ok: 1 };
      case "serverStatus":
        return { host: "localhost", version: "4.4.0", process: "mongod", uptime: 1, ok: 1 };
      case "sleep": {
        const ms = toNumber(cmd.millis) ?? (toNumber(cmd.secs) ?? 0) * 1000;
        await this.sleep(ms);
        return OK;
      }
      case "insert": {
        const r = this.#insert(db, cmd.insert, cmd.documents as Document[], cmd.ordered !== false);
        return { ...r, ok: 1 };
      }
      case "update":
        return { ...this.#update(db, cmd.update, cmd.updates as Document[], cmd.ordered !== false), ok: 1 };
      case "delete":
        return { ...this.#delete(db, cmd.delete, cmd.deletes as Document[]), ok: 1 };
      case "find": {
        const coll = String(cmd.find);
        let docs = [...this.#coll(db, coll, false)?.values() ?? []].filter((d) => matches(d, cmd.filter));
        docs = sortDocs(docs, cmd.sort);
        if (cmd.skip) docs = docs.slice(toNumber(cmd.skip));
        const limit = Math.abs(toNumber(cmd.limit) ?? 0);
        if (limit) docs = docs.slice(0, limit);
        docs = docs.map((d) => project(d, cmd.projection));
        if (this.#isSlow(cmd.comment)) await this.sleep(this.opts.slowMs ?? 500);
        const single = cmd.singleBatch === true || (toNumber(cmd.limit) ?? 0) < 0;
        return this.#cursorReply(`${db}.${coll}`, docs, toNumber(cmd.batchSize), single);
      }
      case "aggregate": {
        const coll = typeof cmd.aggregate === "string" ? cmd.aggregate : "$cmd.aggregate";
        const input = [...this.#coll(db, coll, false)?.values() ?? []];
        const docs = runPipeline(input, cmd.pipeline as Document[]);
        if (this.#isSlow(cmd.comment)) await this.sleep(this.opts.slowMs ?? 500);
        if (cmd.explain) return { stages: cmd.pipeline, ok: 1 };
        const batch = toNumber((cmd.cursor as Document | undefined)?.batchSize);
        return this.#cursorReply(`${db}.${coll}`, docs, batch, false);
      }
      case "getMore": {
        const id = toNumber(cmd.getMore)!;
        const c = this.cursors.get(id);
        if (!c) throw new MongoCommandError(43, "CursorNotFound", `cursor id ${id} not found`);
        const n = toNumber(cmd.batchSize) || c.docs.length;
        const batch = c.docs.slice(c.pos, c.pos + n);
        c.pos += batch.length;
        const done = c.pos >= c.docs.length;
        if (done) this.cursors.delete(id);
        return { cursor: { nextBatch: batch, id: Long.fromNumber(done ? 0 : id), ns: c.ns }, ok: 1 };
      }
      case "killCursors": {
        const killed: Long[] = [], notFound: Long[] = [];
        for (const raw of (cmd.cursors as unknown[]) ?? []) {
          const id = toNumber(raw)!;
          (this.cursors.delete(id) ? killed : notFound).push(Long.fromNumber(id));
        }
        return {
          cursorsKilled: killed,
          cursorsNotFound: notFound,
          cursorsAlive: [],
          cursorsUnknown: [],
          ok: 1,
        };
      }
      case "count": {
        let docs = [...this.#coll(db, String(cmd.count), false)?.values() ?? []].filter((d) =>
          matches(d, cmd.query)
        );
        if (cmd.skip) docs = docs.slice(toNumber(cmd.skip));
        if (cmd.limit) docs = docs.slice(0, Math.abs(toNumber(cmd.limit)!));
        return { n: docs.length, ok: 1 };
      }
      case "distinct": {
        const docs = [...this.#coll(db, String(cmd.distinct), false)?.values() ?? []].filter((d) =>
          matches(d, cmd.query)
        );
        const values: unknown[] = [];
        for (const v of expand(docs.flatMap((d) => pathValues(d, String(cmd.key))))) {
          if (!values.some((e) => equal(e, v))) values.push(v);
        }
        return { values, ok: 1 };
      }
      case "findAndModify":
      case "findandmodify":
        return this.#findAndModify(db, cmd);
      case "create":
        if (this.databases.get(db)?.has(String(cmd.create))) {
          throw new MongoCommandError(
            48,
            "NamespaceExists",
            `Collection ${db}.${cmd.create} already exists.`,
          );
        }
        this.#coll(db, String(cmd.create), true);
        return OK;
      case "drop": {
        const d = this.databases.get(db);
        const had = d?.delete(String(cmd.drop));
        if (!had) throw new MongoCommandError(26, "NamespaceNotFound", "ns not found");
        return { nIndexesWas: 1, ns: `${db}.${cmd.drop}`, ok: 1 };
      }
      case "dropDatabase":
        this.databases.delete(db);
        return { dropped: db, ok: 1 };
      case "createIndexes": {
        this.#coll(db, String(cmd.createIndexes), true);
        return { createdCollectionAutomatically: false, numIndexesBefore: 1, numIndexesAfter: 1, ok: 1 };
      }
      case "listIndexes":
        return this.#cursorReply(
          `${db}.$cmd.listIndexes`,
          [{ v: 2, key: { _id: 1 }, name: "_id_" }],
          undefined,
          false,
        );
      case "listCollections": {
        const names = [...this.databases.get(db)?.keys() ?? []];
        const docs = names.map((n) => ({
          name: n,
          type: "collection",
          options: {},
          info: { readOnly: false },
          idIndex: { v: 2, key: { _id: 1 }, name: "_id_" },
        })).filter((d) => matches(d, cmd.filter));
        return this.#cursorReply(`${db}.$cmd.listCollections`, docs, undefined, false);
      }
      case "listDatabases": {
        const databases = [...this.databases.keys()].map((n) => ({ name: n, sizeOnDisk: 8192, empty: false }))
          .filter((d) => matches(d, cmd.filter));
        return { databases, totalSize: 8192 * databases.length, ok: 1 };
      }
      default:
        throw new MongoCommandError(59, "CommandNotFound", `no such command: '${name}'`);
    }
  }

  #isSlow(comment: unknown): boolean {
    if (comment === undefined) return false;
    const s = typeof comment === "string" ? comment : EJSON.stringify(comment);
    return s.includes("slow");
  }

  #cursorReply(ns: string, docs: Document[], batchSize: number | undefined, single: boolean): Document {
    const n = batchSize === undefined ? DEFAULT_BATCH : batchSize;
    const first = docs.slice(0, n);
    let id = 0;
    if (!single && docs.length > n) {
      id = this.#nextCursor++;
      this.cursors.set(id, { id, ns, docs, pos: n });
    }
    return { cursor: { firstBatch: first, id: Long.fromNumber(id), ns }, ok: 1 };
  }

  #insert(db: string, collName: unknown, docs: Document[], ordered: boolean): Document {
    const coll = this.#coll(db, String(collName), true);
    const writeErrors: Document[] = [];
    let n = 0;
    for (let i = 0; i < docs.length; i++) {
      let d = docs[i];
      if (!("_id" in d)) d = { _id: new ObjectId(), ...d };
      const key = valueKey(d._id);
      if (coll.has(key)) {
        writeErrors.push({
          index: i,
          code: 11000,
          keyPattern: { _id: 1 },
          keyValue: { _id: d._id },
          errmsg: `E11000 duplicate key error collection: ${db}.${collName} index: _id_ dup key: { _id: ${
            EJSON.stringify(d._id)
          } }`,
        });
        if (ordered) break;
        continue;
      }
      coll.set(key, d);
      n++;
    }
    return writeErrors.length ? { n, writeErrors } : { n };
  }

  #update(db: string, collName: unknown, updates: Document[], ordered: boolean): Document {
    const coll = this.#coll(db, String(collName), true);
    let n = 0, nModified = 0;
    const upserted: Document[] = [];
    const writeErrors: Document[] = [];
    for (let i = 0; i < updates.length; i++) {
      const { q, u, multi, upsert } = updates[i];
      try {
        const hits = [...coll.values()].filter((d) => matches(d, q as Document));
        const targets = multi ? hits : hits.slice(0, 1);
        for (const d of targets) {
          const next = applyUpdate(d, u as Document, false);
          n++;
          if (compare(next, d) !== 0) nModified++;
          coll.set(valueKey(d._id), next);
        }
        if (targets.length === 0 && upsert) {
          const seed: Document = {};
          for (const [k, v] of Object.entries(q as Document)) {
            if (!k.startsWith("$") && !isOperatorDoc(v)) setPath(seed, k, v);
          }
          let doc = applyUpdate({ _id: seed._id ?? new ObjectId(), ...seed }, u as Document, true);
          if (doc._id === undefined) doc = { _id: new ObjectId(), ...doc };
          const key = valueKey(doc._id);
          if (coll.has(key)) throw new MongoCommandError(11000, "DuplicateKey", "E11000 duplicate key error");
          coll.set(key, doc);
          n++;
          upserted.push({ index: i, _id: doc._id });
        }
      } catch (err) {
        const e = err instanceof MongoCommandError ? err : new MongoCommandError(2, "BadValue", String(err));
        writeErrors.push({ index: i, code: e.code, errmsg: e.message });
        if (ordered) break;
      }
    }
    return {
      n,
      nModified,
      ...(upserted.length ? { upserted } : {}),
      ...(writeErrors.length ? { writeErrors } : {}),
    };
  }

  #delete(db: string, collName: unknown, deletes: Document[]): Document {
    const coll = this.#coll(db, String(collName), false);
    let n = 0;
    if (!coll) return { n };
    for (const { q, limit } of deletes) {
      const hits = [...coll.values()].filter((d) => matches(d, q as Document));
      for (const d of toNumber(limit) === 1 ? hits.slice(0, 1) : hits) {
        coll.delete(valueKey(d._id));
        n++;
      }
    }
    return { n };
  }

  #findAndModify(db: string, cmd: Document): Document {
    const collName = String(cmd.findAndModify ?? cmd.findandmodify);
    const coll = this.#coll(db, collName, true);
    const hits = sortDocs([...coll.values()].filter((d) => matches(d, cmd.query)), cmd.sort);
    const d = hits[0];
    if (cmd.remove) {
      if (d) coll.delete(valueKey(d._id));
      return { lastErrorObject: { n: d ? 1 : 0 }, value: d ? project(d, cmd.fields) : null, ok: 1 };
    }
    if (!d) {
      if (!cmd.upsert) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
      const r = this.#update(db, collName, [{ q: cmd.query ?? {}, u: cmd.update, upsert: true }], true);
      const id = (r.upserted as Document[])[0]._id;
      const doc = coll.get(valueKey(id))!;
      return {
        lastErrorObject: { n: 1, updatedExisting: false, upserted: id },
        value: cmd.new ? project(doc, cmd.fields) : null,
        ok: 1,
      };
    }
    const next = applyUpdate(d, cmd.update, false);
    coll.set(valueKey(d._id), next);
    return {
      lastErrorObject: { n: 1, updatedExisting: true },
      value: project(cmd.new ? next : d, cmd.fields),
      ok: 1,
    };
  }
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

/** Starts the server on 127.0.0.1 (port 0 unless given). */
export function startMongoServer(opts: MongoServerOptions = {}): MongoServer {
  const listener = Deno.listen({ hostname: opts.hostname ?? "127.0.0.1", port: opts.port ?? 0 });
  const server = new Server(listener, opts);
  const loop = server.acceptLoop();
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await server.close();
      await loop;
    })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stats: server.stats,
    log: server.log,
    databases: server.databases,
    get delayed() {
      return server.delayed;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// A raw wire client (legacy ops included, which drivers no longer send) for tests and the benchmark

const enc = new TextEncoder();

/** Concatenates byte arrays. */
function cat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function int32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return b;
}

function int64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
  return b;
}

function cstring(s: string): Uint8Array {
  return cat([enc.encode(s), new Uint8Array([0])]);
}

/** A whole message: header (length, `requestId`, responseTo 0, `opCode`) + body. */
export function frame(opCode: number, requestId: number, body: Uint8Array[]): Uint8Array {
  const b = cat(body);
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setInt32(0, 16 + b.length, true);
  v.setInt32(4, requestId, true);
  v.setInt32(12, opCode, true);
  return cat([h, b]);
}

/** Legacy message bodies (the header is added by `frame`). */
export const legacy = {
  query: (
    ns: string,
    query: Document,
    o: { skip?: number; numberToReturn?: number; flags?: number } = {},
  ) => [
    int32(o.flags ?? 0),
    cstring(ns),
    int32(o.skip ?? 0),
    int32(o.numberToReturn ?? 0),
    BSON.serialize(query),
  ],
  getMore: (ns: string, numberToReturn: number, cursorId: number) => [
    int32(0),
    cstring(ns),
    int32(numberToReturn),
    int64(cursorId),
  ],
  insert: (ns: string, docs: Document[]) => [int32(0), cstring(ns), ...docs.map((d) => BSON.serialize(d))],
  update: (ns: string, q: Document, u: Document, flags = 0) => [
    int32(0),
    cstring(ns),
    int32(flags),
    BSON.serialize(q),
    BSON.serialize(u),
  ],
  delete: (ns: string, q: Document, flags = 0) => [int32(0), cstring(ns), int32(flags), BSON.serialize(q)],
  killCursors: (ids: number[]) => [int32(0), int32(ids.length), ...ids.map(int64)],
  /** An OP_MSG body: flags, a kind-0 section, then kind-1 sequences. */
  msg: (doc: Document, o: { flags?: number; sequences?: [string, Document[]][] } = {}) => [
    int32(o.flags ?? 0),
    new Uint8Array([0]),
    BSON.serialize(doc),
    ...(o.sequences ?? []).map(([ident, docs]) => {
      const payload = cat([cstring(ident), ...docs.map((d) => BSON.serialize(d))]);
      return cat([new Uint8Array([1]), int32(4 + payload.length), payload]);
    }),
  ],
};

/** A reply read by WireClient. */
export interface WireReply {
  opCode: number;
  requestId: number;
  responseTo: number;
  /** OP_REPLY: responseFlags; OP_MSG: flagBits. */
  flags: number;
  /** OP_REPLY only. */
  cursorId: number;
  /** OP_REPLY documents, or the OP_MSG kind-0 document. */
  docs: Document[];
  /** Size of the whole message. */
  size: number;
}

/** One raw connection speaking the wire protocol; requests get increasing ids. */
export class WireClient {
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #nextId = 1;

  private constructor(readonly conn: Deno.Conn) {}

  static async connect(port: number, hostname = "127.0.0.1"): Promise<WireClient> {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    return new WireClient(conn);
  }

  /** Frames and writes one message; returns its requestId. */
  async send(opCode: number, body: Uint8Array[]): Promise<number> {
    const id = this.#nextId++;
    await writeAll(this.conn, frame(opCode, id, body));
    return id;
  }

  /** Writes raw bytes. */
  async write(bytes: Uint8Array): Promise<void> {
    await writeAll(this.conn, bytes);
  }

  /** Reads one whole message; null at EOF. */
  async read(): Promise<WireReply | null> {
    for (;;) {
      const avail = this.#end - this.#start;
      if (avail >= 16) {
        const v = new DataView(this.#buf.buffer, this.#start);
        const len = v.getInt32(0, true);
        if (avail >= len) {
          const m = this.#buf.subarray(this.#start, this.#start + len);
          this.#start += len;
          return parseReply(m);
        }
        if (len > this.#buf.length - this.#start) {
          const bigger = new Uint8Array(Math.max(this.#buf.length * 2, len));
          bigger.set(this.#buf.subarray(this.#start, this.#end));
          this.#end -= this.#start;
          this.#start = 0;
          this.#buf = bigger;
        }
      }
      if (this.#start === this.#end) this.#start = this.#end = 0;
      else if (this.#end === this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.conn.read(this.#buf.subarray(this.#end));
      if (n === null) return null;
      this.#end += n;
    }
  }

  /** Sends and waits for the reply (throws at EOF). */
  async roundTrip(opCode: number, body: Uint8Array[]): Promise<WireReply> {
    const id = await this.send(opCode, body);
    const r = await this.read();
    if (!r) throw new Error("Connection closed before the reply");
    if (r.responseTo !== id) throw new Error(`Reply to ${r.responseTo}, expected ${id}`);
    return r;
  }

  /** An OP_MSG command; returns the reply document. */
  async command(db: string, doc: Document): Promise<Document> {
    return (await this.roundTrip(OP.MSG, legacy.msg({ ...doc, $db: db }))).docs[0];
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function parseReply(m: Uint8Array): WireReply {
  const v = new DataView(m.buffer, m.byteOffset, m.length);
  const opCode = v.getInt32(12, true);
  const base = { opCode, requestId: v.getInt32(4, true), responseTo: v.getInt32(8, true), size: m.length };
  if (opCode === OP.REPLY) {
    const docs: Document[] = [];
    let off = 36;
    for (let i = 0; i < v.getInt32(32, true); i++) {
      let d: Document;
      [d, off] = readDoc(m, off);
      docs.push(d);
    }
    return { ...base, flags: v.getInt32(16, true), cursorId: Number(v.getBigInt64(20, true)), docs };
  }
  if (opCode === OP.MSG) {
    return { ...base, flags: v.getUint32(16, true), cursorId: 0, docs: [readDoc(m, 21)[0]] };
  }
  return { ...base, flags: 0, cursorId: 0, docs: [] };
}

// ---------------------------------------------------------------------------------------------------------------
// pymongo (Debian's python3-pymongo 3.11 under /usr/bin/python3) running tests/mongo_client.py

const CLIENT_PY = new URL("./mongo_client.py", import.meta.url).pathname;

/** Runs tests/mongo_client.py against 127.0.0.1:`port` and returns the JSON line it printed (throws on failure). */
export async function runPymongo(port: number, db = "pyapp"): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(SYSTEM_PYTHON, {
    args: [CLIENT_PY, String(port), db],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(`pymongo failed (${out.code}):\n${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

/** What tests/mongo_client.py prints against an empty server. */
export const PYMONGO_EXPECTED = {
  inserted: 7,
  found: ["user3"],
  batched: [1, 2, 3, 4, 5, 6, 7],
  count_even: 3,
  aggregate: 4,
  duplicate: 11000,
  unknown: 59,
  updated: 1,
  deleted: 4,
  remaining: [2, 4, 6],
  server_version: "4.4.0",
};

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 27017);
  const server = startMongoServer({ port, logLimit: 0 });
  console.log(`mongo wire server listening on 127.0.0.1:${server.port}`);
  const stop = () => {
    server.close().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

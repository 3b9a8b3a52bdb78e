/**
 * What a query is for the stats (Envoy's QueryMessageInfo, utility.cc): a command (its name), or a query on a
 * collection with a call site, a max time and a type (primary key, multi-get, scatter-get). The same rules
 * classify an OP_MSG body, so an operation counts the same whichever opcode carried it.
 */
import {
  BsonType,
  findField,
  firstKey,
  foundType,
  foundValue,
  isEmptyDocument,
  key,
  keyIs,
  MongoDecodeError,
  readInt32,
  stringLooksLikeObject,
  stringValue,
  utf8,
} from "./bson.ts";
import type { WireMessage } from "./message.ts";
import { COMMAND_ALIASES, QueryType } from "./stats.ts";

const K_QUERY = key("$query");
const K_COMMENT = key("$comment");
const K_MAX_TIME = key("$maxTimeMS");
const K_MAX_TIME2 = key("maxTimeMS");
const K_ID = key("_id");
const K_FIND_COMMENT = key("comment");
const K_FILTER = key("filter");
const K_DB = key("$db");

const K_FIND = key("find");
/** The commands whose name dynamic metadata gives as the operation (Envoy's DynamicMetadataKeys). */
const METADATA_OPERATIONS = ["insert", "update", "delete"];

/** A command name the classifier recognises by its bytes, and the name it counts under. */
interface KnownCommand {
  readonly key: Uint8Array;
  readonly name: string;
}

/**
 * The classification of one query; one per filter config, reused (read it before classifying the next). A
 * command's name is matched by its bytes against the names that matter (the `commands` with Envoy's aliases,
 * and insert/update/delete for metadata), so no string is built for it.
 */
export class QueryInfo {
  /** True for a command, false for a query (a `find` command is a query). */
  isCommand = false;
  /** A command's canonical name when it is one of `commands` or insert/update/delete, else "" (unknown_command). */
  command = "";
  /** The collection (without the database) of a query. */
  collection = "";
  /** The `callingFunction` of a JSON `$comment` (or of a `find`'s `comment`), else "". */
  callsite = "";
  /** `$maxTimeMS` / `maxTimeMS` of a legacy query, else 0 (Envoy does not read it from a `find` command). */
  maxTime = 0;
  /** One of QueryType. */
  type: number = QueryType.ScatterGet;

  readonly #known: KnownCommand[] = [];

  /** `commands`: the names with their own stats. */
  constructor(commands: readonly string[]) {
    // an alias spelling counts under its canonical name (configuring the alias itself counts nothing, as Envoy)
    for (const [alias, canonical] of COMMAND_ALIASES) {
      if (commands.includes(canonical)) this.#known.push({ key: key(alias), name: canonical });
    }
    for (const n of new Set([...commands, ...METADATA_OPERATIONS])) {
      if (!COMMAND_ALIASES.has(n)) this.#known.push({ key: key(n), name: n });
    }
  }

  #reset(): void {
    this.isCommand = false;
    this.command = "";
    this.collection = "";
    this.callsite = "";
    this.maxTime = 0;
    this.type = QueryType.ScatterGet;
  }

  /** Classifies an OP_QUERY; throws MongoDecodeError where Envoy throws (a decoding error). */
  ofQuery(m: WireMessage): void {
    this.#reset();
    const b = m.buf;
    if (m.ns.includes("$cmd")) {
      const doc = findField(b, m.doc, K_QUERY, BsonType.Document) ? foundValue : m.doc;
      this.#ofCommand(b, doc);
      return;
    }
    const dot = m.ns.indexOf(".");
    if (dot < 0) throw new MongoDecodeError("invalid full collection name");
    this.collection = m.ns.slice(dot + 1);
    if (findField(b, m.doc, K_COMMENT, BsonType.String)) this.callsite = callingFunction(b, foundValue);
    this.maxTime = maxTime(b, m.doc);
    let type = typeOf(b, m.doc);
    if (type === QueryType.ScatterGet && findField(b, m.doc, K_QUERY, BsonType.Document)) {
      type = typeOf(b, foundValue);
    }
    this.type = type;
  }

  /** Classifies the body of an OP_MSG request (a command; `find` a query on its collection). */
  ofMsg(m: WireMessage): void {
    this.#reset();
    this.#ofCommand(m.buf, m.doc);
  }

  #ofCommand(b: Uint8Array, doc: number): void {
    if (isEmptyDocument(b, doc)) throw new MongoDecodeError("invalid query command");
    const el = doc + 4;
    if (!keyIs(b, el, K_FIND)) {
      this.isCommand = true;
      const known = this.#known;
      for (let i = 0; i < known.length; i++) {
        if (keyIs(b, el, known[i].key)) {
          this.command = known[i].name;
          return;
        }
      }
      return;
    }
    if (foundType !== BsonType.String) throw new MongoDecodeError("invalid BSON field type cast");
    this.collection = recentCollections.get(b, foundValue);
    if (findField(b, doc, K_FIND_COMMENT, BsonType.String)) this.callsite = callingFunction(b, foundValue);
    if (findField(b, doc, K_FILTER, BsonType.Document)) this.type = typeOf(b, foundValue);
  }
}

/** `$db` of an OP_MSG body, or "". */
export function msgDatabase(m: WireMessage): string {
  return findField(m.buf, m.doc, K_DB, BsonType.String) ? stringValue(m.buf, foundValue) : "";
}

/** The first value of an OP_MSG body when it is a string (the collection of a collection command), else "". */
export function msgCollection(m: WireMessage): string {
  if (isEmptyDocument(m.buf, m.doc)) return "";
  firstKey(m.buf, m.doc);
  return foundType === BsonType.String ? stringValue(m.buf, foundValue) : "";
}

/**
 * The last few BSON strings seen and what was made of them, matched by their bytes: a client repeats a few
 * collections and comments, so most messages neither decode a string nor parse a comment's JSON.
 */
class RecentStrings {
  readonly #bytes: Uint8Array[] = [];
  readonly #values: string[] = [];
  #next = 0;
  constructor(readonly size: number, readonly make: (text: string) => string) {}

  /** The value made of the BSON string value at `v` (its bytes compared with the recent ones first). */
  get(b: Uint8Array, v: number): string {
    const start = v + 4;
    const n = readInt32(b, v) - 1;
    const all = this.#bytes;
    for (let i = 0; i < all.length; i++) {
      const k = all[i];
      if (k.length !== n) continue;
      let j = 0;
      while (j < n && k[j] === b[start + j]) j++;
      if (j === n) return this.#values[i];
    }
    const value = this.make(utf8(b, start, start + n));
    const at = this.#next;
    this.#next = (at + 1) % this.size;
    all[at] = b.slice(start, start + n);
    this.#values[at] = value;
    return value;
  }
}

/** `callingFunction` of a JSON comment, or "" (not JSON, not an object, not a string). */
function parseCallingFunction(text: string): string {
  try {
    const f = JSON.parse(text)?.callingFunction;
    return typeof f === "string" ? f : "";
  } catch {
    return "";
  }
}

const recentComments = new RecentStrings(8, parseCallingFunction);
const recentCollections = new RecentStrings(8, (text) => text);

/** `callingFunction` of the JSON in the string value at `v`, or "" (not JSON, not an object, not a string). */
function callingFunction(b: Uint8Array, v: number): string {
  return stringLooksLikeObject(b, v) ? recentComments.get(b, v) : "";
}

function maxTime(b: Uint8Array, doc: number): number {
  if (!findField(b, doc, K_MAX_TIME) && !findField(b, doc, K_MAX_TIME2)) return 0;
  // int64 is cast to int32 (its low half), as Envoy does
  return foundType === BsonType.Int32 || foundType === BsonType.Int64 ? readInt32(b, foundValue) : 0;
}

function typeOf(b: Uint8Array, doc: number): number {
  if (!findField(b, doc, K_ID)) return QueryType.ScatterGet;
  return foundType === BsonType.Document || foundType === BsonType.Array
    ? QueryType.MultiGet
    : QueryType.PrimaryKey;
}

/**
 * The mongo access log (`access_log`: a file path): one JSON line per decoded message, in Envoy's shape
 * (AccessLog::logMessage and each message's toString, proxy.cc / codec_impl.cc):
 *
 *   {"time": "<ISO 8601 UTC, ms>", "message": {"opcode": "OP_QUERY", "id": 1, ...}, "upstream_host": "<ip:port|->"}
 *
 * Requests are logged in full (documents rendered), replies in short (a document count), as Envoy does. OP_MSG
 * and OP_COMPRESSED, which Envoy does not decode, get lines of the same style (see `messageText`).
 */
import type { Scope } from "../../../../stats/store.ts";
import { BufferedLineWriter, type ByteSink } from "../../../../access_log/writer.ts";
import { int64String } from "./bson.ts";
import { documentText, escapeJson } from "./bson_text.ts";
import { OpCode, type WireMessage } from "./message.ts";

const COMPRESSORS = ["noop", "snappy", "zlib", "zstd"];

/** fmt's `{:#x}` of an int32. */
function hex(n: number): string {
  return n < 0 ? "-0x" + (-n).toString(16) : "0x" + n.toString(16);
}

/** The documents kept as offsets (the first 64) in full, or how many the message has. */
function docList(m: WireMessage, full: boolean, count: number): string {
  if (!full) return String(count);
  let s = "[";
  for (let i = 0; i < m.docs.length; i++) s += (i ? ", " : "") + documentText(m.buf, m.docs[i]);
  return s + "]";
}

/** The `message` of a log line (Envoy's toString(full)); `reply` is the direction (OP_MSG only). */
export function messageText(m: WireMessage, full: boolean, reply: boolean): string {
  const head = `"id": ${m.requestId}, "response_to": ${m.responseTo}`;
  const ns = escapeJson(m.ns);
  const b = m.buf;
  switch (m.opCode) {
    case OpCode.Query:
      return `{"opcode": "OP_QUERY", ${head}, "flags": "${hex(m.flags)}", "collection": "${ns}", ` +
        `"skip": ${m.skip}, "return": ${m.numberToReturn}, ` +
        `"query": ${full ? documentText(b, m.doc) : '"{...}"'}, ` +
        `"fields": ${m.doc2 >= 0 ? documentText(b, m.doc2) : "{}"}}`;
    case OpCode.Reply:
      return `{"opcode": "OP_REPLY", ${head}, "flags": "${hex(m.flags)}", ` +
        `"cursor": "${int64String(b, m.cursorIdAt)}", "from": ${m.skip}, "returned": ${m.numberToReturn}, ` +
        `"documents": ${docList(m, full, m.docCount)}}`;
    case OpCode.GetMore:
      return `{"opcode": "OP_GET_MORE", ${head}, "collection": "${ns}", "return": ${m.numberToReturn}, ` +
        `"cursor": ${int64String(b, m.cursorIdAt)}}`;
    case OpCode.Insert:
      return `{"opcode": "OP_INSERT", ${head}, "flags": "${hex(m.flags)}", "collection": "${ns}", ` +
        `"documents": ${docList(m, full, m.docCount)}}`;
    case OpCode.KillCursors: {
      let cursors = "[";
      for (let i = 0; i < m.numberToReturn; i++) {
        cursors += (i ? ", " : "") + int64String(b, m.cursorIdAt + 8 * i);
      }
      return `{"opcode": "KILL_CURSORS", "id": ${m.requestId}, "response_to": "${hex(m.responseTo)}", ` +
        `"num_cursors": "${m.numberToReturn}", "cursors": ${cursors}]}`;
    }
    case OpCode.Command:
      return `{"opcode": "OP_COMMAND", ${head}, "database": "${ns}", ` +
        `"commandName": "${escapeJson(m.commandName)}", "metadata": ${documentText(b, m.doc)}, ` +
        `"commandArgs": ${documentText(b, m.doc2)}, "inputDocs": ${docList(m, full, m.docCount)}}`;
    case OpCode.CommandReply:
      return `{"opcode": "OP_COMMANDREPLY", ${head}, "metadata": ${documentText(b, m.doc)}, ` +
        `"commandReply": ${documentText(b, m.doc2)}, "outputDocs":${docList(m, full, m.docCount)}} `;
    case OpCode.Msg: {
      let seqs = "[";
      for (let i = 0; i < m.sequenceIds.length; i++) {
        seqs += (i ? ", " : "") + `"${escapeJson(m.sequenceIds[i])}"`;
      }
      return `{"opcode": "OP_MSG", ${head}, "flags": "${hex(m.flags)}", ` +
        `"body": ${full && !reply ? documentText(b, m.doc) : '"{...}"'}, "sequences": ${seqs}], ` +
        `"documents": ${docList(m, full && !reply, m.docCount - 1)}}`;
    }
    default: // OP_COMPRESSED with a real compressor: its header
      return `{"opcode": "OP_COMPRESSED", ${head}, "original_opcode": ${m.originalOpCode}, ` +
        `"uncompressed_size": ${m.uncompressedSize}, ` +
        `"compressor": "${COMPRESSORS[m.compressorId] ?? String(m.compressorId)}"}`;
  }
}

/** A file opened for append (the access log's sink). */
class AppendSink implements ByteSink {
  #file: Deno.FsFile;
  #reopen = false;
  constructor(readonly path: string) {
    this.#file = Deno.openSync(path, { append: true, create: true });
  }
  write(p: Uint8Array): Promise<number> {
    if (this.#reopen) {
      this.#reopen = false;
      const next = Deno.openSync(this.path, { append: true, create: true });
      this.#file.close();
      this.#file = next;
    }
    return this.#file.write(p);
  }
  reopen(): void {
    this.#reopen = true;
  }
  close(): void {
    this.#file.close();
  }
}

/** The access log of one filter config: lines are queued and written in the background. */
export class MongoAccessLog {
  readonly #writer: BufferedLineWriter;

  /** Opens `path` for append (throws when it cannot: a config error); `stats` is the root scope. */
  constructor(path: string, stats: Scope) {
    this.#writer = new BufferedLineWriter(new AppendSink(path), { stats, name: path });
  }

  /** Queues the line of message `m` decoded at `now` (epoch ms). */
  log(m: WireMessage, full: boolean, reply: boolean, now: number, upstreamHost: string): void {
    this.#writer.write(
      `{"time": "${new Date(now).toISOString()}", "message": ${messageText(m, full, reply)}, ` +
        `"upstream_host": "${upstreamHost === "" ? "-" : upstreamHost}"}\n`,
    );
  }

  /** Resolves once every queued line is written. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return this.#writer.close();
  }
}

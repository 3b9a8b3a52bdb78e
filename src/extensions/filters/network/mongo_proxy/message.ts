/**
 * The Mongo wire messages nuncio parses: opcodes, the reusable `WireMessage` a decoded message is read from, and
 * the parsing of each opcode's body (`parseBody`). Envoy's opcodes (OP_REPLY, OP_INSERT, OP_QUERY, OP_GET_MORE,
 * OP_KILL_CURSORS, OP_COMMAND, OP_COMMANDREPLY) are parsed as Envoy reads them, OP_MSG by its spec (section
 * kinds 0 and 1, the checksum flag; the CRC-32C itself is not verified: the server does). Bytes that do not parse
 * exactly to the message's end throw `MongoDecodeError`.
 */
import { cstringEnd, int64NonZero, MongoDecodeError, readInt32, utf8, validateDocument } from "./bson.ts";

/** Wire protocol opcodes. */
export const OpCode = {
  Reply: 1,
  Insert: 2002,
  Query: 2004,
  GetMore: 2005,
  KillCursors: 2007,
  Command: 2010,
  CommandReply: 2011,
  Compressed: 2012,
  Msg: 2013,
} as const;

/** OP_MSG flag bits. */
export const MsgFlags = { ChecksumPresent: 1, MoreToCome: 2, ExhaustAllowed: 1 << 16 } as const;

/** Most documents kept as offsets per message (more are counted and sized, not kept). */
const MAX_KEPT_DOCS = 64;

/**
 * One decoded message; the decoder reuses a single instance, and `buf` and every offset are valid only during
 * the callback. Fields not used by the opcode keep stale values.
 */
export class WireMessage {
  /** The bytes holding the message (a read chunk or the decoder's own buffer). */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the message (its length field) and of its end in `buf`. */
  start = 0;
  end = 0;
  requestId = 0;
  responseTo = 0;
  opCode = 0;
  /** OP_QUERY/OP_INSERT/OP_REPLY flags, OP_MSG flagBits. */
  flags = 0;
  /** fullCollectionName (OP_QUERY, OP_GET_MORE, OP_INSERT); OP_COMMAND: database. */
  ns = "";
  /** OP_QUERY numberToSkip, OP_REPLY startingFrom. */
  skip = 0;
  /** OP_QUERY/OP_GET_MORE numberToReturn, OP_REPLY numberReturned, OP_KILL_CURSORS numberOfCursorIDs. */
  numberToReturn = 0;
  /** Offset of the int64 cursor id (OP_REPLY, OP_GET_MORE), else -1. */
  cursorIdAt = -1;
  /** OP_QUERY query, OP_MSG body, OP_COMMAND metadata, OP_COMMANDREPLY metadata: offset, or -1. */
  doc = -1;
  /** OP_QUERY returnFieldsSelector, OP_COMMAND commandArgs, OP_COMMANDREPLY commandReply: offset, or -1. */
  doc2 = -1;
  /** OP_COMMAND commandName. */
  commandName = "";
  /** Offsets of the message's (other) documents: OP_INSERT/OP_REPLY documents, OP_MSG kind-1 documents. */
  docs: number[] = [];
  /** How many documents the message carries in all (OP_MSG: body included) and their bytes. */
  docCount = 0;
  docBytes = 0;
  /** OP_MSG kind-1 section identifiers, in order (e.g. "documents"). */
  sequenceIds: string[] = [];
  /** OP_COMPRESSED header. */
  originalOpCode = 0;
  uncompressedSize = 0;
  compressorId = 0;
}

/** Adds the document at `p` (ending by `end`) to the message; returns its end. */
function addDoc(m: WireMessage, b: Uint8Array, p: number, end: number): number {
  const e = validateDocument(b, p, end);
  m.docCount++;
  m.docBytes += e - p;
  if (m.docs.length < MAX_KEPT_DOCS) m.docs.push(p);
  return e;
}

function need(p: number, n: number, end: number): void {
  if (p + n > end) throw new MongoDecodeError("invalid buffer size");
}

/** Parses the body (after the 16-byte header) of opcode `m.opCode` in `b[p, end)`. */
export function parseBody(m: WireMessage, b: Uint8Array, p: number, end: number): void {
  switch (m.opCode) {
    case OpCode.Reply: {
      need(p, 20, end);
      m.flags = readInt32(b, p);
      m.cursorIdAt = p + 4;
      m.skip = readInt32(b, p + 12);
      m.numberToReturn = readInt32(b, p + 16);
      p += 20;
      for (let i = 0; i < m.numberToReturn; i++) p = addDoc(m, b, p, end);
      break;
    }
    case OpCode.Query: {
      need(p, 4, end);
      m.flags = readInt32(b, p);
      const nsEnd = cstringEnd(b, p + 4, end);
      m.ns = utf8(b, p + 4, nsEnd);
      p = nsEnd + 1;
      need(p, 8, end);
      m.skip = readInt32(b, p);
      m.numberToReturn = readInt32(b, p + 4);
      m.doc = p + 8;
      p = validateDocument(b, p + 8, end);
      if (p < end) {
        m.doc2 = p;
        p = validateDocument(b, p, end);
      }
      break;
    }
    case OpCode.GetMore: {
      need(p, 4, end);
      const nsEnd = cstringEnd(b, p + 4, end);
      m.ns = utf8(b, p + 4, nsEnd);
      p = nsEnd + 1;
      need(p, 12, end);
      m.numberToReturn = readInt32(b, p);
      m.cursorIdAt = p + 4;
      p += 12;
      break;
    }
    case OpCode.Insert: {
      need(p, 4, end);
      m.flags = readInt32(b, p);
      const nsEnd = cstringEnd(b, p + 4, end);
      m.ns = utf8(b, p + 4, nsEnd);
      p = nsEnd + 1;
      while (p < end) p = addDoc(m, b, p, end);
      break;
    }
    case OpCode.KillCursors: {
      need(p, 8, end);
      m.numberToReturn = readInt32(b, p + 4);
      if (m.numberToReturn < 0) throw new MongoDecodeError("invalid OP_KILL_CURSORS");
      m.cursorIdAt = p + 8;
      p += 8;
      need(p, 8 * m.numberToReturn, end);
      p += 8 * m.numberToReturn;
      break;
    }
    case OpCode.Command: {
      const dbEnd = cstringEnd(b, p, end);
      m.ns = utf8(b, p, dbEnd);
      const cmdEnd = cstringEnd(b, dbEnd + 1, end);
      m.commandName = utf8(b, dbEnd + 1, cmdEnd);
      m.doc = cmdEnd + 1;
      m.doc2 = validateDocument(b, m.doc, end);
      p = validateDocument(b, m.doc2, end);
      while (p < end) p = addDoc(m, b, p, end);
      break;
    }
    case OpCode.CommandReply: {
      m.doc = p;
      m.doc2 = validateDocument(b, p, end);
      p = validateDocument(b, m.doc2, end);
      while (p < end) p = addDoc(m, b, p, end);
      break;
    }
    case OpCode.Msg:
      p = parseMsg(m, b, p, end);
      break;
    default:
      throw new MongoDecodeError(`invalid mongo op ${m.opCode}`);
  }
  if (p !== end) throw new MongoDecodeError("message length does not match its content");
}

/** OP_MSG: flagBits, sections (exactly one of kind 0, any of kind 1), optional CRC-32C (not verified). */
function parseMsg(m: WireMessage, b: Uint8Array, p: number, end: number): number {
  need(p, 4, end);
  m.flags = readInt32(b, p);
  m.sequenceIds.length = 0;
  const sectionsEnd = m.flags & MsgFlags.ChecksumPresent ? end - 4 : end;
  p += 4;
  if (p >= sectionsEnd) throw new MongoDecodeError("OP_MSG without sections");
  while (p < sectionsEnd) {
    const kind = b[p++];
    if (kind === 0) {
      if (m.doc >= 0) throw new MongoDecodeError("OP_MSG with two body sections");
      m.doc = p;
      const e = validateDocument(b, p, sectionsEnd);
      m.docCount++;
      m.docBytes += e - p;
      p = e;
    } else if (kind === 1) {
      need(p, 4, sectionsEnd);
      const size = readInt32(b, p);
      if (size < 5 || p + size > sectionsEnd) throw new MongoDecodeError("invalid OP_MSG document sequence");
      const seqEnd = p + size;
      const idEnd = cstringEnd(b, p + 4, seqEnd);
      if (m.sequenceIds.length < MAX_KEPT_DOCS) m.sequenceIds.push(utf8(b, p + 4, idEnd));
      p = idEnd + 1;
      while (p < seqEnd) p = addDoc(m, b, p, seqEnd);
    } else throw new MongoDecodeError(`invalid OP_MSG section kind ${kind}`);
  }
  if (m.doc < 0) throw new MongoDecodeError("OP_MSG without a body section");
  return end;
}

/** True when the message's cursor id is set and not zero (OP_REPLY). */
export function hasCursor(m: WireMessage): boolean {
  return m.cursorIdAt >= 0 && int64NonZero(m.buf, m.cursorIdAt);
}

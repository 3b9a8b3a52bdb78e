/**
 * A resumable interpreter that walks one Kafka message (header remainder and body) by the generated schema
 * table, chunk by chunk, without buffering: scalars and the contents of strings, bytes and records are skipped
 * by count; only lengths, counts and captured fields are read (byte by byte, so any split works). Memory is a
 * stack as deep as the schema's nesting.
 */
import {
  F_ARRAY,
  F_CAPTURE,
  FIELD_STRIDE,
  FIXED_WIDTH,
  K_BYTES,
  K_RECORDS,
  K_STRING,
  K_STRING16,
  K_STRUCT,
  STRUCTS,
} from "./schema.ts";

/** What reading a number leads to. */
const AFTER_STRLEN16 = 1;
const AFTER_COMPACT_LEN = 2;
const AFTER_BYTESLEN32 = 3;
const AFTER_ARRLEN32 = 4;
const AFTER_COMPACT_ARRLEN = 5;
const AFTER_STRUCT_MARK = 6;
const AFTER_TAG_COUNT = 7;
const AFTER_TAG = 8;
const AFTER_TAG_SIZE = 9;
const AFTER_CAPTURE = 10;

const FRAME_STRUCT = 0;
const FRAME_ARRAY = 1;
const FRAME_TAGS = 2;

interface Frame {
  type: number;
  /** FRAME_STRUCT: the struct's fields; FRAME_ARRAY: unused. */
  fields: readonly number[];
  /** FRAME_STRUCT: next field offset; otherwise unused. */
  i: number;
  /** FRAME_ARRAY / FRAME_TAGS: elements left. */
  left: number;
  /** Flexible encoding (compact lengths, tagged fields at the end of each struct). */
  flex: boolean;
  /** FRAME_STRUCT: the tagged-field section was started. */
  tagsDone: boolean;
  /** FRAME_ARRAY: element kind and struct index. */
  kind: number;
  sub: number;
}

/** Outcome of a walk. */
export const WalkState = { Running: 0, Done: 1, Invalid: 2 } as const;
/** One of WalkState. */
export type WalkState = typeof WalkState[keyof typeof WalkState];

/** A synthetic struct: the request header's client_id (nullable, int16 length even when flexible). */
export const HEADER_CLIENT_ID: readonly number[] = [K_STRING16, 0, 0x7fff, 0, 0x7fff, 0];
/** A synthetic struct with no fields: in flexible mode it reads just a tagged-field section. */
export const EMPTY_STRUCT: readonly number[] = [];

/** Walks one message; `feed` consumes from chunks, `finish` judges the walk when the frame ends. */
export class BodyWalker {
  #stack: Frame[] = [];
  #version = 0;
  /** Bytes of the frame not yet fed (the walk may not read past the frame). */
  #left = 0;
  #skip = 0;
  /** Pending number: 0 none, 1 fixed-width big-endian, 2 unsigned varint. */
  #numMode = 0;
  #numLeft = 0;
  #numWidth = 0;
  #numAcc = 0;
  #numShift = 0;
  #numThen = 0;
  /** The field being read (for what comes after its length). */
  #curNullable = false;
  #curKind = 0;
  #curSub = 0;
  #curFlex = false;
  #state: WalkState = WalkState.Done;
  /** The last captured field value (Produce acks), or undefined. */
  captured: number | undefined;
  /** Why the walk is Invalid (for debug logs). */
  reason = "";

  /** Starts a walk over `frameLeft` bytes: `structs` are walked in order (flex per struct). */
  start(
    version: number,
    frameLeft: number,
    structs: readonly { fields: readonly number[]; flex: boolean }[],
  ): void {
    this.#stack.length = 0;
    this.#version = version;
    this.#left = frameLeft;
    this.#skip = 0;
    this.#numMode = 0;
    this.captured = undefined;
    this.reason = "";
    for (let i = structs.length - 1; i >= 0; i--) this.#pushStruct(structs[i].fields, structs[i].flex);
    this.#state = WalkState.Running;
  }

  /** The walk's state. */
  get state(): WalkState {
    return this.#state;
  }

  /** Frame bytes not consumed yet. */
  get left(): number {
    return this.#left;
  }

  /**
   * Consumes bytes of `data[pos..end)` (never more than the frame holds); returns the new position. Stops early
   * when the schema is satisfied (Done) or violated (Invalid).
   */
  feed(data: Uint8Array, pos: number, end: number): number {
    if (end - pos > this.#left) end = pos + this.#left;
    const start = pos;
    pos = this.#run(data, pos, end);
    this.#left -= pos - start;
    return pos;
  }

  /** Judges a walk whose frame ran out: still Running means truncated (Invalid). */
  finish(): WalkState {
    if (this.#state === WalkState.Running) this.#fail("truncated");
    return this.#state;
  }

  #fail(reason: string): void {
    this.#state = WalkState.Invalid;
    this.reason = reason;
  }

  #pushStruct(fields: readonly number[], flex: boolean): void {
    this.#stack.push({ type: FRAME_STRUCT, fields, i: 0, left: 0, flex, tagsDone: false, kind: 0, sub: 0 });
  }

  #readNum(mode: number, width: number, then: number): void {
    this.#numMode = mode;
    this.#numLeft = width;
    this.#numWidth = width;
    this.#numAcc = 0;
    this.#numShift = 0;
    this.#numThen = then;
  }

  /** Sets up skipping `n` content bytes; false (Invalid) when the frame does not hold them. */
  #skipBytes(n: number, consumedSoFar: number): boolean {
    if (n > this.#left - consumedSoFar) {
      this.#fail("length beyond frame");
      return false;
    }
    this.#skip = n;
    return true;
  }

  #run(data: Uint8Array, pos: number, end: number): number {
    const base = pos;
    const stack = this.#stack;
    while (this.#state === WalkState.Running) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, end - pos);
        this.#skip -= n;
        pos += n;
        if (this.#skip > 0) return pos;
      }
      if (this.#numMode !== 0) {
        if (this.#numMode === 1) {
          while (this.#numLeft > 0 && pos < end) {
            this.#numAcc = this.#numAcc * 256 + data[pos++];
            this.#numLeft--;
          }
          if (this.#numLeft > 0) return pos;
        } else {
          let more = true;
          while (more && pos < end) {
            const b = data[pos++];
            if (this.#numShift >= 35) {
              this.#fail("varint too long");
              return pos;
            }
            this.#numAcc += (b & 0x7f) * 2 ** this.#numShift;
            this.#numShift += 7;
            more = (b & 0x80) !== 0;
          }
          if (more) return pos;
        }
        this.#numMode = 0;
        this.#after(this.#numThen, this.#numAcc, pos - base);
        continue;
      }
      const top = stack[stack.length - 1];
      if (top === undefined) {
        this.#state = WalkState.Done;
        return pos;
      }
      if (top.type === FRAME_STRUCT) {
        const f = top.fields;
        if (top.i < f.length) {
          const i = top.i;
          top.i += FIELD_STRIDE;
          const v = this.#version;
          if (v < f[i + 1] || v > f[i + 2]) continue;
          this.#startField(f[i], v >= f[i + 3] && v <= f[i + 4], f[i + 5], top.flex, pos - base);
        } else if (top.flex && !top.tagsDone) {
          top.tagsDone = true;
          this.#readNum(2, 0, AFTER_TAG_COUNT);
        } else stack.pop();
      } else if (top.left > 0) {
        top.left--;
        if (top.type === FRAME_ARRAY) this.#startField(top.kind, false, top.sub, top.flex, pos - base);
        else this.#readNum(2, 0, AFTER_TAG);
      } else stack.pop();
    }
    return pos;
  }

  /** Begins reading one field (or array element) of `kindFlags`. */
  #startField(kindFlags: number, nullable: boolean, sub: number, flex: boolean, consumed: number): void {
    const kind = kindFlags & 15;
    this.#curNullable = nullable;
    this.#curKind = kind;
    this.#curSub = sub;
    this.#curFlex = flex;
    if (kindFlags & F_ARRAY) {
      if (flex) this.#readNum(2, 0, AFTER_COMPACT_ARRLEN);
      else this.#readNum(1, 4, AFTER_ARRLEN32);
      return;
    }
    const width = FIXED_WIDTH[kind];
    if (width > 0) {
      if (kindFlags & F_CAPTURE) this.#readNum(1, width, AFTER_CAPTURE);
      else this.#skipBytes(width, consumed);
      return;
    }
    if (kind === K_STRING) {
      if (flex) this.#readNum(2, 0, AFTER_COMPACT_LEN);
      else this.#readNum(1, 2, AFTER_STRLEN16);
    } else if (kind === K_STRING16) this.#readNum(1, 2, AFTER_STRLEN16);
    else if (kind === K_BYTES || kind === K_RECORDS) {
      if (flex) this.#readNum(2, 0, AFTER_COMPACT_LEN);
      else this.#readNum(1, 4, AFTER_BYTESLEN32);
    } else if (kind === K_STRUCT) {
      if (nullable) this.#readNum(1, 1, AFTER_STRUCT_MARK);
      else this.#pushStruct(STRUCTS[sub], flex);
    } else this.#fail(`unknown kind ${kind}`);
  }

  /** Continues after a number was read; `consumed` is what this feed consumed so far. */
  #after(then: number, raw: number, consumed: number): void {
    switch (then) {
      case AFTER_STRLEN16:
      case AFTER_BYTESLEN32: {
        const v = then === AFTER_STRLEN16 ? (raw << 16) >> 16 : raw | 0;
        if (v === -1 && this.#curNullable) return;
        if (v < 0) return this.#fail("negative length");
        this.#skipBytes(v, consumed);
        return;
      }
      case AFTER_COMPACT_LEN:
        if (raw === 0) {
          if (!this.#curNullable) this.#fail("null in non-nullable field");
          return;
        }
        this.#skipBytes(raw - 1, consumed);
        return;
      case AFTER_ARRLEN32:
      case AFTER_COMPACT_ARRLEN: {
        const n = then === AFTER_ARRLEN32 ? raw | 0 : raw - 1;
        if (n === -1) {
          if (!this.#curNullable) this.#fail("null in non-nullable array");
          return;
        }
        if (n < 0) return this.#fail("negative array length");
        if (n > this.#left - consumed) return this.#fail("array longer than frame");
        this.#stack.push({
          type: FRAME_ARRAY,
          fields: EMPTY_STRUCT,
          i: 0,
          left: n,
          flex: this.#curFlex,
          tagsDone: false,
          kind: this.#curKind,
          sub: this.#curSub,
        });
        return;
      }
      case AFTER_STRUCT_MARK:
        if ((raw << 24) >> 24 >= 0) this.#pushStruct(STRUCTS[this.#curSub], this.#curFlex);
        return;
      case AFTER_TAG_COUNT:
        if (raw > this.#left - consumed) return this.#fail("tag count beyond frame");
        this.#stack.push({
          type: FRAME_TAGS,
          fields: EMPTY_STRUCT,
          i: 0,
          left: raw,
          flex: true,
          tagsDone: true,
          kind: 0,
          sub: 0,
        });
        return;
      case AFTER_TAG:
        this.#readNum(2, 0, AFTER_TAG_SIZE);
        return;
      case AFTER_TAG_SIZE:
        this.#skipBytes(raw, consumed);
        return;
      case AFTER_CAPTURE: {
        const w = this.#numWidth;
        this.captured = w === 1 ? (raw << 24) >> 24 : w === 2 ? (raw << 16) >> 16 : w === 4 ? raw | 0 : raw;
        return;
      }
    }
  }
}

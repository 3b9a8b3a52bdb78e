/**
 * The per-stream side of the gRPC server (server.ts): head validation and method dispatch, request message
 * collection, deadlines, handler invocation and the single reply (a message with OK, or trailers-only).
 */
import { type TimeoutTarget, TimerEntry, type TimerWheel } from "../common/timer_wheel.ts";
import { HeaderMap } from "../http/headers.ts";
import { ErrorCode } from "../http/h2/constants.ts";
import type { H2Head } from "../http/h2/head.ts";
import type { H2Stream, H2StreamHandler } from "../http/h2/stream.ts";
import { GrpcError } from "./client.ts";
import { encodeGrpcFrame, encodeGrpcMessage, GrpcStatus } from "./frame.ts";
import { GrpcStreamCall, type GrpcStreamHandler } from "./stream_call.ts";

/**
 * A unary method: the serialized request and the request metadata (headers) in, the serialized response
 * out. Throw (or reject with) a GrpcError, or any error with a numeric `grpcStatus`, to answer that status;
 * other errors answer UNKNOWN.
 */
export type GrpcUnaryHandler = (request: Uint8Array, md: HeaderMap) => Uint8Array | Promise<Uint8Array>;

/** Parses a grpc-timeout value (1-8 digits and a unit H M S m u n) into ms; -1 when malformed. */
export function parseGrpcTimeout(v: string): number {
  const n = v.length - 1;
  if (n < 1 || n > 8) return -1;
  let x = 0;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    x = x * 10 + c;
  }
  switch (v.charCodeAt(n)) {
    case 72: // H
      return x * 3_600_000;
    case 77: // M
      return x * 60_000;
    case 83: // S
      return x * 1000;
    case 109: // m
      return x;
    case 117: // u
      return x / 1000;
    case 110: // n
      return x / 1_000_000;
    default:
      return -1;
  }
}

/** True for application/grpc, application/grpc+proto, application/grpc;... */
function isGrpcContentType(ct: string | undefined): boolean {
  if (ct === undefined || !ct.startsWith("application/grpc")) return false;
  if (ct.length === 16) return true;
  const c = ct.charCodeAt(16);
  return c === 43 || c === 59; // + or ;
}

function statusOf(e: unknown): number {
  if (e instanceof GrpcError) return e.status;
  const s = (e as { grpcStatus?: unknown } | null)?.grpcStatus;
  return typeof s === "number" && s > 0 && s <= 16 ? s : GrpcStatus.UNKNOWN;
}

const RESPONSE_HEADERS = HeaderMap.from([["content-type", "application/grpc"]]);
const OK_TRAILERS = HeaderMap.from([["grpc-status", "0"]]);

/** Sends a trailers-only reply (or an HTTP error status with grpc-status) and ends the stream. */
function trailersOnly(st: H2Stream, httpStatus: number, code: number, message: string): void {
  const h = new HeaderMap();
  h.addLower("content-type", "application/grpc");
  h.addLower("grpc-status", String(code));
  if (message !== "") h.addLower("grpc-message", encodeGrpcMessage(message));
  if (code === GrpcStatus.UNIMPLEMENTED && httpStatus === 200) h.addLower("grpc-accept-encoding", "identity");
  st.respond(httpStatus, h, true);
}

/** Routes new streams to their method (one per server; the codec's handler of every connection). */
export class Dispatcher implements H2StreamHandler {
  readonly methods = new Map<string, GrpcUnaryHandler>();
  /** Bidirectional streaming methods (stream_call.ts). */
  readonly streams = new Map<string, GrpcStreamHandler>();
  constructor(readonly timers: TimerWheel, readonly maxMessage: number) {}

  /** Per request: validates the head and hands the stream to a UnaryCall. */
  onHeaders(st: H2Stream, head: H2Head, endStream: boolean): void {
    const h = head.headers;
    if (head.method !== "POST") {
      return trailersOnly(st, 405, GrpcStatus.INTERNAL, `Method ${head.method} not allowed, gRPC uses POST`);
    }
    if (!isGrpcContentType(h.get("content-type"))) {
      return trailersOnly(st, 415, GrpcStatus.INTERNAL, "Content-type must be application/grpc");
    }
    const streaming = this.streams.get(head.path);
    const handler = this.methods.get(head.path);
    if (handler === undefined && streaming === undefined) {
      return trailersOnly(st, 200, GrpcStatus.UNIMPLEMENTED, `Method not found: ${head.path}`);
    }
    const enc = h.get("grpc-encoding");
    if (enc !== undefined && enc !== "identity") {
      return trailersOnly(st, 200, GrpcStatus.UNIMPLEMENTED, `Message encoding ${enc} is not supported`);
    }
    if (streaming !== undefined) return this.#startStream(st, head.path, h, streaming, endStream);
    const call = new UnaryCall(this, st, handler!, h);
    st.handler = call;
    const t = h.get("grpc-timeout");
    if (t !== undefined) {
      const ms = parseGrpcTimeout(t);
      if (ms < 0) call.fail(GrpcStatus.INTERNAL, `Malformed grpc-timeout ${t}`);
      else call.arm(ms);
    }
    if (endStream) call.end();
  }

  #startStream(
    st: H2Stream,
    path: string,
    h: HeaderMap,
    handler: GrpcStreamHandler,
    endStream: boolean,
  ): void {
    const call = new GrpcStreamCall(st, path, h, this.timers, this.maxMessage);
    st.handler = call;
    try {
      handler(call);
    } catch (e) {
      return call.end(statusOf(e), (e as Error)?.message ?? String(e));
    }
    const t = h.get("grpc-timeout");
    if (t !== undefined) {
      const ms = parseGrpcTimeout(t);
      if (ms < 0) return call.end(GrpcStatus.INTERNAL, `Malformed grpc-timeout ${t}`);
      call.arm(ms);
    }
    if (endStream) call.onTrailers();
  }

  // Body, trailers and resets of streams refused at their head are dropped.
  onData(): void {}
  onTrailers(): void {}
  onReset(): void {}
}

/** One unary call: collects the request message, runs the handler, answers once. */
class UnaryCall implements H2StreamHandler, TimeoutTarget {
  readonly #server: Dispatcher;
  readonly #st: H2Stream;
  readonly #handler: GrpcUnaryHandler;
  readonly #md: HeaderMap;
  #timer: TimerEntry | null = null;
  #done = false;
  #ended = false;
  /** Prefix bytes seen of the current frame (0-5). */
  #got = 0;
  #len = 0;
  #have = 0;
  #msg: Uint8Array | null = null;
  #complete = false;

  constructor(server: Dispatcher, st: H2Stream, handler: GrpcUnaryHandler, md: HeaderMap) {
    this.#server = server;
    this.#st = st;
    this.#handler = handler;
    this.#md = md;
  }

  /** Arms the deadline `ms` from now (0: already expired). */
  arm(ms: number): void {
    if (ms <= 0) return this.fail(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
    this.#timer = new TimerEntry(this);
    this.#server.timers.arm(this.#timer, Math.ceil(ms));
  }

  onTimeout(): void {
    this.fail(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
  }

  onHeaders(): void {}

  onData(_st: H2Stream, d: Uint8Array, endStream: boolean): void {
    if (this.#done) return;
    const n = d.length;
    let i = 0;
    while (i < n) {
      if (this.#complete) {
        return this.fail(GrpcStatus.INTERNAL, "More than one request message in a unary call");
      }
      if (this.#got < 5) {
        const b = d[i++];
        if (this.#got++ === 0) {
          if (b !== 0) {
            return this.fail(GrpcStatus.INTERNAL, "Compressed request message without grpc-encoding");
          }
          continue;
        }
        this.#len = this.#len * 256 + b;
        if (this.#got < 5) continue;
        if (this.#len > this.#server.maxMessage) {
          return this.fail(
            GrpcStatus.RESOURCE_EXHAUSTED,
            `Request message of ${this.#len} bytes exceeds ${this.#server.maxMessage}`,
          );
        }
        if (this.#len === 0) {
          this.#msg = new Uint8Array(0);
          this.#complete = true;
        } else if (n - i >= this.#len) {
          this.#msg = d.slice(i, i + this.#len); // the usual case: the whole message in this DATA frame
          i += this.#len;
          this.#complete = true;
        } else {
          this.#msg = new Uint8Array(this.#len);
        }
        continue;
      }
      const take = Math.min(this.#len - this.#have, n - i);
      this.#msg!.set(d.subarray(i, i + take), this.#have);
      this.#have += take;
      i += take;
      if (this.#have === this.#len) this.#complete = true;
    }
    if (endStream) this.end();
  }

  onTrailers(): void {
    this.end();
  }

  onReset(): void {
    this.#done = true;
    this.#disarm();
  }

  /** The request side ended: run the handler. */
  end(): void {
    this.#ended = true;
    if (this.#done) return;
    if (!this.#complete) return this.fail(GrpcStatus.INTERNAL, "Missing request message");
    let r: Uint8Array | Promise<Uint8Array>;
    try {
      r = this.#handler(this.#msg!, this.#md);
    } catch (e) {
      return this.fail(statusOf(e), (e as Error)?.message ?? String(e));
    }
    if (r instanceof Uint8Array) this.#reply(r);
    else void this.#await(r);
  }

  async #await(p: Promise<Uint8Array>): Promise<void> {
    let r: Uint8Array;
    try {
      r = await p;
    } catch (e) {
      return this.fail(statusOf(e), (e as Error)?.message ?? String(e));
    }
    this.#reply(r);
  }

  #reply(msg: Uint8Array): void {
    if (this.#done) return;
    this.#done = true;
    this.#disarm();
    const st = this.#st;
    if (st.isClosed) return;
    st.respond(200, RESPONSE_HEADERS, false);
    st.sendData(encodeGrpcFrame(msg), false);
    st.sendTrailers(OK_TRAILERS);
  }

  /** Answers `code` trailers-only (once); a request still sending is told to stop (RST_STREAM NO_ERROR). */
  fail(code: number, message: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#disarm();
    const st = this.#st;
    if (st.isClosed) return;
    trailersOnly(st, 200, code, message);
    if (!this.#ended) st.reset(ErrorCode.NO_ERROR);
  }

  #disarm(): void {
    if (this.#timer !== null) this.#server.timers.disarm(this.#timer);
  }
}

/**
 * A bidirectional streaming call of the gRPC server (server.ts `registerStream`): request messages are
 * deframed as they arrive and handed to `onMessage`, replies go out with `send` at any time, `end` closes with
 * a status in the trailers. Long-lived calls (xDS streams) take no deadline unless the client sent
 * grpc-timeout. The handler learns of the client's half-close (`onHalfClose`) and of the end of the call for
 * any reason (`onClose`: its own `end`, a reset, or the connection going away), exactly once.
 */
import type { TimeoutTarget, TimerWheel } from "../common/timer_wheel.ts";
import { TimerEntry } from "../common/timer_wheel.ts";
import { ErrorCode } from "../http/h2/constants.ts";
import { HeaderMap } from "../http/headers.ts";
import type { H2Stream, H2StreamHandler } from "../http/h2/stream.ts";
import { encodeGrpcFrame, encodeGrpcMessage, GrpcFrameDecoder, GrpcStatus } from "./frame.ts";

/** Starts a streaming call: set the call's callbacks, then send when there is something to say. */
export type GrpcStreamHandler = (call: GrpcStreamCall) => void;

const RESPONSE_HEADERS = HeaderMap.from([["content-type", "application/grpc"]]);

/** One bidirectional streaming call (see the file comment). */
export class GrpcStreamCall implements H2StreamHandler, TimeoutTarget {
  /** The request metadata (headers). */
  readonly md: HeaderMap;
  /** The request path (`/package.Service/Method`). */
  readonly path: string;
  /** A request message (serialized). */
  onMessage: (msg: Uint8Array) => void = () => {};
  /** The client half-closed its side; the call stays open until `end`. */
  onHalfClose: () => void = () => {};
  /** The call is over (once): `cancelled` when the client reset it or the connection went away. */
  onClose: (cancelled: boolean) => void = () => {};
  readonly #st: H2Stream;
  readonly #decoder: GrpcFrameDecoder;
  readonly #timers: TimerWheel;
  #timer: TimerEntry | null = null;
  #done = false;
  #halfClosed = false;

  /** Made by the dispatcher on a validated head; the response head goes out at once. */
  constructor(st: H2Stream, path: string, md: HeaderMap, timers: TimerWheel, maxMessage: number) {
    this.#st = st;
    this.path = path;
    this.md = md;
    this.#timers = timers;
    this.#decoder = new GrpcFrameDecoder(maxMessage);
    st.respond(200, RESPONSE_HEADERS, false);
  }

  /** True once the call ended (either side). */
  get closed(): boolean {
    return this.#done;
  }

  /** Bytes sent and not yet written (flow control or a slow reader): a bound for the handler to watch. */
  get pendingBytes(): number {
    return this.#st.pendingBytes;
  }

  /** Sends one message; false when the call is over. */
  send(msg: Uint8Array): boolean {
    if (this.#done || this.#st.isClosed) return false;
    this.#st.sendData(encodeGrpcFrame(msg), false);
    return true;
  }

  /** Ends the call with `code` (default OK) and `message` in the trailers; no-op once over. */
  end(code: number = GrpcStatus.OK, message = ""): void {
    if (this.#done) return;
    this.#finish(false);
    const st = this.#st;
    if (st.isClosed) return;
    const t = new HeaderMap();
    t.addLower("grpc-status", String(code));
    if (message !== "") t.addLower("grpc-message", encodeGrpcMessage(message));
    st.sendTrailers(t);
    if (!this.#halfClosed) st.reset(ErrorCode.NO_ERROR);
  }

  /** Arms a deadline `ms` from now (grpc-timeout). */
  arm(ms: number): void {
    if (ms <= 0) return this.end(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
    this.#timer = new TimerEntry(this);
    this.#timers.arm(this.#timer, Math.ceil(ms));
  }

  /** See TimeoutTarget. */
  onTimeout(): void {
    this.#timer = null;
    this.end(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
  }

  /** See H2StreamHandler (the head was taken by the dispatcher). */
  onHeaders(): void {}

  /** See H2StreamHandler: deframes and delivers each whole message. */
  onData(_st: H2Stream, d: Uint8Array, endStream: boolean): void {
    if (this.#done) return;
    let msgs: Uint8Array[];
    try {
      msgs = this.#decoder.push(d);
    } catch (e) {
      const tooBig = (e as Error).message.includes("exceeds");
      return this.end(tooBig ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL, (e as Error).message);
    }
    for (const m of msgs) {
      if (this.#done) return;
      this.onMessage(m);
    }
    if (endStream) this.#halfClose();
  }

  /** See H2StreamHandler. */
  onTrailers(): void {
    this.#halfClose();
  }

  /** See H2StreamHandler: the client cancelled, or the connection is gone. */
  onReset(): void {
    if (this.#done) return;
    this.#finish(true);
  }

  #halfClose(): void {
    if (this.#halfClosed || this.#done) return;
    this.#halfClosed = true;
    this.onHalfClose();
  }

  #finish(cancelled: boolean): void {
    this.#done = true;
    if (this.#timer !== null) this.#timers.disarm(this.#timer);
    this.#timer = null;
    this.onClose(cancelled);
  }
}

/**
 * The connection core shared by both roles: frame splitting over the wire's reused read buffer, outbound
 * and inbound flood limits, SETTINGS, PING, GOAWAY and connection flow control.
 * Stream-level frames are handed to the subclass (session.ts); nothing here allocates per frame.
 */
import { ErrorCode, Flag, FRAME_HEADER, FrameType, MAX_WINDOW, PREFACE } from "./constants.ts";
import {
  type OutBuf,
  readU32,
  writeGoaway,
  writePing,
  writeSettings,
  writeSettingsAck,
  writeWindowUpdate,
} from "./frame.ts";
import { HpackDecoder, HpackEncoder } from "./hpack.ts";
import { type H2Options, type ResolvedH2Options, resolveOptions } from "./options.ts";
import { InboundCounters, localSettings, PeerSettings } from "./settings.ts";
import { type H2Stats, newH2Stats } from "./stats.ts";
import { type H2Transport, Wire, type WireSink } from "./wire.ts";

export type { H2Transport } from "./wire.ts";

/** Connection-level notifications (set once per connection). */
export interface H2ConnectionEvents {
  /** The peer sent GOAWAY. */
  onGoaway?(lastStreamId: number, code: number): void;
  /** The connection is closed (after every stream got its final event). */
  onClose?(): void;
  /** Client: a stream slot became free or the peer raised its concurrency limit. */
  onCapacity?(): void;
}

/** Options of a connection: protocol options plus role-independent hooks. */
export interface H2ConnectionOptions extends H2Options {
  /** Connection-level notifications. */
  events?: H2ConnectionEvents;
  /** Bytes already read from the transport (e.g. the preface sniffed by codec_type AUTO). */
  initial?: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/** Base of H2ServerConnection and H2ClientConnection; see session.ts for the stream half. */
export abstract class H2Core implements WireSink {
  protected readonly o: ResolvedH2Options;
  /** The stats this connection maintains. */
  readonly stats: H2Stats;
  protected readonly events: H2ConnectionEvents;
  protected readonly encoder: HpackEncoder;
  protected readonly decoder: HpackDecoder;
  protected readonly peer = new PeerSettings();
  protected connSendWindow = 65535;
  protected lastPeerStreamId = 0;
  protected goawaySent = false;
  protected goawayReceived = false;
  /** Set once the connection is going away: no more reads are processed. */
  protected closing = false;
  protected dataFramesSent = 0;
  protected streamsOpened = 0;
  /** Stream whose header block awaits CONTINUATION frames, or 0. */
  protected continuationFor = 0;
  /** Monotonic time of the read being parsed, taken on first use (-1: not yet for this read). */
  #readMono = -1;
  readonly #isClient: boolean;
  #closed = false;
  #connRecvWindow = 65535;
  #connRecvUnacked = 0;
  #prefaceLeft: number;
  #settingsSeen = false;
  readonly #counters: InboundCounters;
  #pings = new Map<number, (rtt: number) => void>();
  #pingSeq = 0;
  #pingBuf = new Uint8Array(8);
  readonly #initial: Uint8Array | undefined;
  readonly #wire: Wire;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  constructor(transport: H2Transport, isClient: boolean, opts: H2ConnectionOptions) {
    this.o = resolveOptions(opts);
    this.stats = opts.stats ?? newH2Stats();
    this.events = opts.events ?? {};
    this.#wire = new Wire(transport, this);
    this.#counters = new InboundCounters(this.o);
    this.#isClient = isClient;
    this.#prefaceLeft = isClient ? 0 : PREFACE.length;
    this.#initial = opts.initial;
    this.encoder = new HpackEncoder();
    this.decoder = new HpackDecoder(this.o.hpack_table_size);
    this.#done = new Promise((r) => this.#resolveDone = r);
  }

  /** Resolves when the connection is closed. */
  get closed(): Promise<void> {
    return this.#done;
  }

  /** True once closed or closing. */
  get isClosed(): boolean {
    return this.#closed || this.closing;
  }

  /** Bytes queued for the socket and not yet written. */
  get bufferedBytes(): number {
    return this.#wire.bufferedBytes;
  }

  /** The output buffer frames are queued in. */
  protected get out(): OutBuf {
    return this.#wire.out;
  }

  /** WireSink: reads stop once the connection is going away. */
  get stopReading(): boolean {
    return this.closing;
  }

  /** WireSink: consumes received bytes. */
  onBytes(b: Uint8Array, s: number, e: number): number {
    this.#readMono = -1;
    return this.#parse(b, s, e);
  }

  /** Monotonic ms of the bytes being parsed: one clock call per read, shared by every frame in it. */
  protected readMono(): number {
    let t = this.#readMono;
    if (t < 0) t = this.#readMono = performance.now();
    return t;
  }

  /** WireSink: the output drained; move more stream data. */
  onDrained(): void {
    this.pump();
  }

  /** WireSink: the transport ended. */
  onEnd(): void {
    this.close();
  }

  /** Sends the preface and SETTINGS and starts reading; returns the `closed` promise. */
  start(): Promise<void> {
    const o = this.o;
    if (this.#isClient) {
      this.out.ensure(PREFACE.length);
      this.out.buf.set(PREFACE, 0);
      this.out.len = PREFACE.length;
    }
    const [ids, vals] = localSettings(o, this.#isClient);
    writeSettings(this.out, ids, vals);
    const extra = o.initial_connection_window_size - 65535;
    if (extra > 0) {
      writeWindowUpdate(this.out, 0, extra);
      this.#connRecvWindow += extra;
    }
    this.flush();
    void this.#wire.read(this.o.max_frame_size, this.#initial);
    return this.#done;
  }

  /** Sends a PING; resolves with the round trip in ms (rejects if the connection closes first). */
  ping(): Promise<number> {
    const seq = ++this.#pingSeq;
    const t0 = performance.now();
    const b = this.#pingBuf;
    b.fill(0);
    b[4] = seq >>> 24, b[5] = (seq >>> 16) & 0xff, b[6] = (seq >>> 8) & 0xff, b[7] = seq & 0xff;
    writePing(this.out, false, b, 0);
    this.flush();
    return new Promise((resolve) => this.#pings.set(seq, (t) => resolve(t - t0)));
  }

  /** Sends GOAWAY (`lastStreamId` defaults to the last peer stream seen); stops new streams. */
  goaway(code: number = ErrorCode.NO_ERROR, lastStreamId = this.lastPeerStreamId, debug = ""): void {
    if (this.#closed) return;
    writeGoaway(this.out, lastStreamId, code, debug ? encoder.encode(debug) : undefined);
    this.stats.goaway_sent.inc();
    this.goawaySent = true;
    this.flush();
    if (code !== ErrorCode.NO_ERROR) this.closeAfterFlush();
    else this.maybeDrained();
  }

  /** Closes the transport now; open streams get onReset. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closing = true;
    this.#wire.close();
    this.failStreams();
    for (const f of this.#pings.values()) f(-1);
    this.#pings.clear();
    this.events.onClose?.();
    this.#resolveDone();
  }

  /** Schedules a write of everything queued. */
  protected flush(): void {
    this.#wire.flush();
  }

  /** Closes once everything queued has been written. */
  protected closeAfterFlush(): void {
    this.closing = true;
    this.#wire.closeAfterFlush();
  }

  /** Connection error: GOAWAY with `code` and close (RFC 9113 §5.4.1). */
  protected connectionError(code: number, detail: string): void {
    if (this.closing) return;
    if (code === ErrorCode.PROTOCOL_ERROR || code === ErrorCode.COMPRESSION_ERROR) {
      this.stats.rx_messaging_error.inc();
    }
    this.goaway(code, this.lastPeerStreamId, detail);
    this.closeAfterFlush();
  }

  /** True (and the connection closed) when the queued frames pass the outbound flood limits. */
  protected checkOutbound(): boolean {
    if (this.#wire.queuedFrames > this.o.max_outbound_frames) {
      this.stats.outbound_flood.inc();
    } else if (this.#wire.queuedControlFrames > this.o.max_outbound_control_frames) {
      this.stats.outbound_control_flood.inc();
    } else return false;
    this.close();
    return true;
  }

  /** Returns connection receive window after `n` flow-controlled bytes were taken off the wire. */
  protected connConsumed(n: number): boolean {
    if (n > this.#connRecvWindow) {
      this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, "http2.flow_control_error");
      return false;
    }
    this.#connRecvWindow -= n;
    this.#connRecvUnacked += n;
    if (this.#connRecvUnacked >= this.o.initial_connection_window_size >> 1) {
      writeWindowUpdate(this.out, 0, this.#connRecvUnacked);
      this.#connRecvWindow += this.#connRecvUnacked;
      this.#connRecvUnacked = 0;
    }
    return true;
  }

  /** Stream frames, decoded by the subclass. */
  protected abstract onStreamFrame(
    type: number,
    flags: number,
    id: number,
    b: Uint8Array,
    s: number,
    e: number,
  ): void;
  /** The peer's initial window changed by `delta`; SETTINGS_MAX_CONCURRENT_STREAMS may have changed. */
  protected abstract onPeerSettings(windowDelta: number): void;
  /** The peer sent GOAWAY. */
  protected abstract onGoawayFrame(lastStreamId: number, code: number): void;
  /** Moves queued stream data into the output while windows and the watermark allow. */
  protected abstract pump(): void;
  /** Ends every open stream with onReset (the connection is gone). */
  protected abstract failStreams(): void;
  /** Closes the connection when going away and no streams remain. */
  protected abstract maybeDrained(): void;

  #parse(b: Uint8Array, s: number, e: number): number {
    if (this.#prefaceLeft > 0) {
      while (s < e && this.#prefaceLeft > 0) {
        if (b[s] !== PREFACE[PREFACE.length - this.#prefaceLeft]) {
          this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.invalid_preface");
          return e;
        }
        s++, this.#prefaceLeft--;
      }
      if (this.#prefaceLeft > 0) return s;
    }
    const max = this.o.max_frame_size;
    while (e - s >= FRAME_HEADER) {
      const len = (b[s] << 16) | (b[s + 1] << 8) | b[s + 2];
      if (len > max) {
        this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.frame_too_large");
        return e;
      }
      if (e - s < FRAME_HEADER + len) break;
      const type = b[s + 3];
      const flags = b[s + 4];
      const id = readU32(b, s + 5) & 0x7fffffff;
      const p = s + FRAME_HEADER;
      s = p + len;
      this.#frame(type, flags, id, b, p, s);
      if (this.closing || this.checkOutbound()) return e;
    }
    this.flush();
    return s;
  }

  #frame(type: number, flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (!this.#settingsSeen) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.settings_expected");
      }
      this.#settingsSeen = true;
    }
    if (this.continuationFor !== 0 && (type !== FrameType.CONTINUATION || id !== this.continuationFor)) {
      return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.continuation_expected");
    }
    if (
      (type <= FrameType.HEADERS || type === FrameType.CONTINUATION) &&
      this.#counters.emptyFlood(s === e && (flags & Flag.END_STREAM) === 0)
    ) {
      this.stats.inbound_empty_frames_flood.inc();
      return this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, "http2.inbound_empty_frames_flood");
    }
    switch (type) {
      case FrameType.SETTINGS:
        return this.#settings(flags, id, b, s, e);
      case FrameType.PING:
        if (id !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.ping_stream");
        if (e - s !== 8) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.ping_size");
        if (flags & Flag.ACK) {
          const f = this.#pings.get(readU32(b, s + 4));
          if (f) this.#pings.delete(readU32(b, s + 4)), f(performance.now());
        } else writePing(this.out, true, b, s);
        return;
      case FrameType.GOAWAY:
        if (id !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.goaway_stream");
        if (e - s < 8) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.goaway_size");
        this.goawayReceived = true;
        this.onGoawayFrame(readU32(b, s) & 0x7fffffff, readU32(b, s + 4));
        return this.events.onGoaway?.(readU32(b, s) & 0x7fffffff, readU32(b, s + 4));
      case FrameType.WINDOW_UPDATE:
        if (e - s !== 4) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.window_update_size");
        if (this.#counters.windowUpdateFlood(this.streamsOpened, this.dataFramesSent)) {
          this.stats.inbound_window_update_frames_flood.inc();
          return this.connectionError(
            ErrorCode.ENHANCE_YOUR_CALM,
            "http2.inbound_window_update_frames_flood",
          );
        }
        if (id !== 0) return this.onStreamFrame(type, flags, id, b, s, e);
        {
          const inc = readU32(b, s) & 0x7fffffff;
          if (inc === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.zero_window_update");
          this.connSendWindow += inc;
          if (this.connSendWindow > MAX_WINDOW) {
            return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, "http2.window_overflow");
          }
          return this.pump();
        }
      case FrameType.PRIORITY:
        if (this.#counters.priorityFlood(this.streamsOpened)) {
          this.stats.inbound_priority_frames_flood.inc();
          return this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, "http2.inbound_priority_frames_flood");
        }
        return this.onStreamFrame(type, flags, id, b, s, e);
      case FrameType.PUSH_PROMISE:
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.push_promise");
      default:
        if (type > FrameType.CONTINUATION) return; // unknown frame types are ignored
        return this.onStreamFrame(type, flags, id, b, s, e);
    }
  }

  #settings(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (id !== 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.settings_stream");
    if (flags & Flag.ACK) {
      if (e !== s) this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.settings_ack_size");
      return;
    }
    const err = this.peer.apply(b, s, e, this.#isClient);
    if (err !== "") return this.connectionError(this.peer.errorCode, err);
    if (this.peer.headerTableSize >= 0) this.encoder.setPeerMaxTableSize(this.peer.headerTableSize);
    writeSettingsAck(this.out);
    this.onPeerSettings(this.peer.windowDelta);
  }

  /** An empty Uint8Array (for end-of-stream DATA). */
  protected static readonly EMPTY = EMPTY;
}

/**
 * The Kafka sniffing codec of one connection: a request decoder for bytes from the client, a response decoder
 * for bytes from the broker, and the requests in flight that match responses (which carry only a correlation
 * id) to their api_key and version. Frames are walked as they pass (`BodyWalker`), nothing is buffered beyond
 * a few header bytes, and no byte is changed.
 *
 * Outcomes, as in Envoy's kafka_broker filter: a request or response whose body matches its schema is
 * `parsed`; an api_key/version the table does not define, or a body followed by extra bytes, is `unknown`; a
 * body that breaks its schema inside the frame (truncated, negative or oversized lengths) is `failure` and
 * decoding goes on at the next frame; a frame whose length is absurd (negative, shorter than its header, over
 * MAX_FRAME_BYTES) or a response nobody asked for is `failure` and that direction stops decoding for good.
 */
import { apiFor, type ApiInfo, requestHeaderVersion, responseHeaderVersion, STRUCTS } from "./schema.ts";
import { BodyWalker, EMPTY_STRUCT, HEADER_CLIENT_ID, WalkState } from "./body_walker.ts";

/** Largest frame accepted (Kafka's default socket.request.max.bytes, 100 MiB). */
export const MAX_FRAME_BYTES = 104_857_600;
/** Most requests kept waiting for a response per connection; the oldest is forgotten beyond it. */
export const MAX_IN_FLIGHT = 1024;

/** What the codec reports (the filter turns these into stats). */
export interface KafkaCodecSink {
  /** A request whose body matched its schema. */
  onRequest(api: ApiInfo, version: number): void;
  /** A request of an api_key/version not in the table, or with bytes after its body. */
  onRequestUnknown(): void;
  /** A request that broke its schema or framing. */
  onRequestFailure(reason: string): void;
  /** A response whose body matched its schema, `ms` after its request was decoded. */
  onResponse(api: ApiInfo, version: number, ms: number): void;
  /** A response to an unknown request, or with bytes after its body. */
  onResponseUnknown(): void;
  /** A response that broke its schema or framing, or answered no request in flight. */
  onResponseFailure(reason: string): void;
}

interface InFlight {
  key: number;
  version: number;
  /** Undefined when the table does not define the request's api_key/version. */
  api: ApiInfo | undefined;
  at: number;
}

const S_LEN = 0;
const S_HEAD = 1;
const S_WALK = 2;
const S_SKIP = 3;
const S_DEAD = 4;

const O_PARSED = 0;
const O_UNKNOWN = 1;
const O_FAILURE = 2;

/** Shared machinery of both directions: the frame length, a fixed head, then a walk or a skip. */
abstract class FrameDecoder {
  protected state: number = S_LEN;
  protected frameLeft = 0;
  /** Bytes of the length or the fixed head read so far, and their accumulated value(s). */
  protected got = 0;
  protected head = new Uint8Array(8);
  protected readonly walker = new BodyWalker();
  /** Outcome of the frame being skipped or walked. */
  protected outcome = O_PARSED;
  protected reason = "";

  constructor(protected readonly headBytes: number) {}

  /** True once this direction stopped decoding (bytes still flow). */
  get dead(): boolean {
    return this.state === S_DEAD;
  }

  /** Stops decoding this direction for good. */
  kill(): void {
    this.state = S_DEAD;
  }

  /** Decodes a chunk (any split); never throws on malformed input. */
  onData(data: Uint8Array): void {
    let pos = 0;
    const end = data.length;
    while (pos < end && this.state !== S_DEAD) {
      switch (this.state) {
        case S_LEN:
          while (this.got < 4 && pos < end) this.head[this.got++] = data[pos++];
          if (this.got < 4) return;
          this.frameLeft = (this.head[0] << 24) | (this.head[1] << 16) | (this.head[2] << 8) | this.head[3];
          this.got = 0;
          if (this.frameLeft < this.headBytes || this.frameLeft > MAX_FRAME_BYTES) {
            this.framingFailure(`frame length ${this.frameLeft}`);
            return;
          }
          this.state = S_HEAD;
          break;
        case S_HEAD: {
          while (this.got < this.headBytes && pos < end) this.head[this.got++] = data[pos++];
          if (this.got < this.headBytes) return;
          this.frameLeft -= this.headBytes;
          this.got = 0;
          this.onHead();
          if (!this.dead && this.frameLeft === 0) this.endFrame();
          break;
        }
        case S_WALK: {
          const before = pos;
          pos = this.walker.feed(data, pos, Math.min(end, pos + this.frameLeft));
          this.frameLeft -= pos - before;
          const ws = this.walker.state;
          if (ws !== WalkState.Running) {
            this.outcome = ws === WalkState.Invalid ? O_FAILURE : this.frameLeft > 0 ? O_UNKNOWN : O_PARSED;
            this.reason = this.walker.reason;
            this.state = S_SKIP;
          } else if (this.frameLeft === 0) {
            this.walker.finish();
            this.outcome = O_FAILURE;
            this.reason = this.walker.reason;
          }
          if (this.frameLeft === 0) this.endFrame();
          break;
        }
        case S_SKIP: {
          const n = Math.min(this.frameLeft, end - pos);
          pos += n;
          this.frameLeft -= n;
          if (this.frameLeft === 0) this.endFrame();
          break;
        }
      }
    }
  }

  /** A frame's walk or skip ended: report and go back to reading a length. */
  protected endFrame(): void {
    if (this.state === S_DEAD) return;
    this.state = S_LEN;
    this.onFrameEnd(this.outcome, this.reason);
  }

  protected int16(at: number): number {
    return ((this.head[at] << 24) | (this.head[at + 1] << 16)) >> 16;
  }

  protected int32(at: number): number {
    return (this.head[at] << 24) | (this.head[at + 1] << 16) | (this.head[at + 2] << 8) | this.head[at + 3];
  }

  /** The fixed head is in `head`: pick a walk or a skip (set state, outcome). */
  protected abstract onHead(): void;
  /** The frame is over. */
  protected abstract onFrameEnd(outcome: number, reason: string): void;
  /** The framing is broken: report and stop. */
  protected abstract framingFailure(reason: string): void;
}

/** Decodes client -> broker bytes. */
class RequestDecoder extends FrameDecoder {
  #key = 0;
  #version = 0;
  #correlationId = 0;
  #api: ApiInfo | undefined;

  constructor(private readonly session: KafkaSession) {
    super(8);
  }

  protected onHead(): void {
    this.#key = this.int16(0);
    this.#version = this.int16(2);
    this.#correlationId = this.int32(4);
    const api = this.#api = apiFor(this.#key, this.#version);
    if (!api) {
      this.outcome = O_UNKNOWN;
      this.state = S_SKIP;
      return;
    }
    const hv = requestHeaderVersion(api, this.#version);
    const flex = hv === 2;
    const body = { fields: STRUCTS[api.requestStruct], flex };
    this.walker.start(
      this.#version,
      this.frameLeft,
      hv === 0 ? [body] : [{ fields: HEADER_CLIENT_ID, flex }, body],
    );
    this.state = S_WALK;
    if (this.frameLeft === 0) {
      // nothing after the fixed head: a walk that needs nothing is parsed, else truncated
      this.walker.feed(new Uint8Array(0), 0, 0);
      this.outcome = this.walker.finish() === WalkState.Done ? O_PARSED : O_FAILURE;
      this.reason = this.walker.reason;
    }
  }

  protected onFrameEnd(outcome: number, reason: string): void {
    const s = this.session;
    if (outcome === O_PARSED) s.sink.onRequest(this.#api!, this.#version);
    else if (outcome === O_UNKNOWN) s.sink.onRequestUnknown();
    else s.sink.onRequestFailure(reason);
    // Produce with acks=0 gets no response
    if (this.#api?.key === 0 && outcome === O_PARSED && this.walker.captured === 0) return;
    s.expect(this.#correlationId, { key: this.#key, version: this.#version, api: this.#api, at: s.now() });
  }

  protected framingFailure(reason: string): void {
    this.kill();
    this.session.sink.onRequestFailure(reason);
  }
}

/** Decodes broker -> client bytes. */
class ResponseDecoder extends FrameDecoder {
  #req: InFlight | undefined;

  constructor(private readonly session: KafkaSession) {
    super(4);
  }

  protected onHead(): void {
    const cid = this.int32(0);
    const req = this.#req = this.session.take(cid);
    if (!req) {
      // the request side stopped: its later requests were never seen, so stop quietly
      if (this.session.requestsDead) this.kill();
      else this.framingFailure(`no request in flight with correlation id ${cid}`);
      return;
    }
    const api = req.api;
    if (!api) {
      this.outcome = O_UNKNOWN;
      this.state = S_SKIP;
      return;
    }
    const flex = api.firstFlexibleResponse >= 0 && req.version >= api.firstFlexibleResponse;
    const body = { fields: STRUCTS[api.responseStruct], flex };
    this.walker.start(
      req.version,
      this.frameLeft,
      responseHeaderVersion(api, req.version) === 1 ? [{ fields: EMPTY_STRUCT, flex: true }, body] : [body],
    );
    this.state = S_WALK;
    if (this.frameLeft === 0) {
      this.walker.feed(new Uint8Array(0), 0, 0);
      this.outcome = this.walker.finish() === WalkState.Done ? O_PARSED : O_FAILURE;
      this.reason = this.walker.reason;
    }
  }

  protected onFrameEnd(outcome: number, reason: string): void {
    const req = this.#req!;
    const sink = this.session.sink;
    if (outcome === O_PARSED) sink.onResponse(req.api!, req.version, this.session.now() - req.at);
    else if (outcome === O_UNKNOWN) sink.onResponseUnknown();
    else sink.onResponseFailure(reason);
  }

  protected framingFailure(reason: string): void {
    this.kill();
    this.session.sink.onResponseFailure(reason);
  }
}

/** Both directions of one Kafka connection. */
export class KafkaSession {
  readonly #inFlight = new Map<number, InFlight>();
  readonly #requests: RequestDecoder;
  readonly #responses: ResponseDecoder;

  constructor(readonly sink: KafkaCodecSink, readonly now: () => number) {
    this.#requests = new RequestDecoder(this);
    this.#responses = new ResponseDecoder(this);
  }

  /** Bytes from the client. */
  onRequestData(data: Uint8Array): void {
    this.#requests.onData(data);
  }

  /** Bytes from the broker. */
  onResponseData(data: Uint8Array): void {
    this.#responses.onData(data);
  }

  /** True once request decoding stopped. */
  get requestsDead(): boolean {
    return this.#requests.dead;
  }

  /** True once response decoding stopped. */
  get responsesDead(): boolean {
    return this.#responses.dead;
  }

  /** Requests waiting for a response. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Records a request awaiting its response (bounded: the oldest is dropped past MAX_IN_FLIGHT). */
  expect(correlationId: number, r: InFlight): void {
    if (this.#responses.dead) return;
    this.#inFlight.delete(correlationId);
    this.#inFlight.set(correlationId, r);
    if (this.#inFlight.size > MAX_IN_FLIGHT) {
      this.#inFlight.delete(this.#inFlight.keys().next().value!);
    }
  }

  /** Takes the request a response answers, or undefined. */
  take(correlationId: number): InFlight | undefined {
    const r = this.#inFlight.get(correlationId);
    if (r) this.#inFlight.delete(correlationId);
    return r;
  }

  /** The connection closed: forget everything. */
  close(): void {
    this.#inFlight.clear();
    this.#requests.kill();
    this.#responses.kill();
  }
}

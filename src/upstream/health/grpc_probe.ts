/**
 * gRPC health check (grpc.health.v1.Health/Check) over the project's HTTP/2 client, as Envoy's gRPC
 * checker: one connection per host kept between checks (reuse_connection), SERVING passes, any other status,
 * a non-OK grpc-status, a non-200 or non-gRPC reply fails actively; resets and connect failures are network
 * failures. A GOAWAY closes the connection once the check in flight ends.
 */
import { encodeGrpcFrame, GrpcFrameDecoder } from "../../grpc/frame.ts";
import { lenFieldSize, ProtoReader, ProtoWriter, utf8Length, WIRE_VARINT } from "../../grpc/protobuf.ts";
import { H2ClientConnection } from "../../http/h2/client.ts";
import { ErrorCode } from "../../http/h2/constants.ts";
import { type H2Head, requestHead } from "../../http/h2/head.ts";
import type { H2Stream, H2StreamHandler } from "../../http/h2/stream.ts";
import { HeaderMap } from "../../http/headers.ts";
import type { HostImpl } from "../host.ts";
import type { HealthCheckConfig } from "./config.ts";
import {
  closeQuietly,
  plainConnect,
  type Probe,
  type ProbeConnect,
  type ProbeFactory,
  ProbeOutcome,
  type ProbeSink,
} from "./probe.ts";

/** Path of the standard health method. */
export const GRPC_HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check";

/** HealthCheckResponse.ServingStatus. */
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

/** Options of the gRPC checker (built once at config time). */
export interface GrpcProbeOptions {
  /** The request head (POST /grpc.health.v1.Health/Check, :authority, content-type, te, metadata). */
  head: H2Head;
  /** The framed HealthCheckRequest. */
  request: Uint8Array;
  reuseConnection: boolean;
  /** Socket opener (the cluster's transport socket); plain TCP when absent. */
  connect?: ProbeConnect;
}

/** Encodes HealthCheckRequest { service = 1 } (config time). */
export function encodeHealthCheckRequest(service: string): Uint8Array {
  if (service === "") return new Uint8Array(0);
  const len = utf8Length(service);
  const w = new ProtoWriter(lenFieldSize(len));
  w.stringField(1, service, len);
  return w.buf;
}

/** Reads HealthCheckResponse.status (field 1); UNKNOWN when absent. Throws on malformed input. */
export function decodeServingStatus(b: Uint8Array): number {
  const r = new ProtoReader(b);
  let status: number = ServingStatus.UNKNOWN;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag >>> 3 === 1 && (tag & 7) === WIRE_VARINT) status = r.varint();
    else r.skip(tag & 7);
  }
  return status;
}

/** Builds the gRPC probe options of a HealthCheck (config time); `cluster` is the default :authority. */
export function grpcProbeOptions(cfg: HealthCheckConfig, cluster: string): GrpcProbeOptions {
  const g = cfg.grpc_health_check!;
  const headers = new HeaderMap();
  headers.addLower("content-type", "application/grpc");
  headers.addLower("te", "trailers");
  for (const o of g.initial_metadata) {
    const name = o.header.key.toLowerCase();
    if (o.append_action === "ADD_IF_ABSENT" && headers.has(name)) continue;
    if (o.append === false || o.append_action === "OVERWRITE_IF_EXISTS_OR_ADD") {
      headers.set(name, o.header.value);
    } else headers.add(name, o.header.value);
  }
  return {
    head: requestHead("POST", GRPC_HEALTH_CHECK_PATH, g.authority || cluster, headers),
    request: encodeGrpcFrame(encodeHealthCheckRequest(g.service_name)),
    reuseConnection: cfg.reuse_connection,
  };
}

/** The gRPC ProbeFactory. */
export class GrpcProbeFactory implements ProbeFactory {
  readonly type = "GRPC";
  /** A factory sending `opts.request` on every check. */
  constructor(readonly opts: GrpcProbeOptions) {}
  /** Makes the probe of `host`. */
  create(host: HostImpl, sink: ProbeSink): Probe {
    return new GrpcProbe(host, sink, this.opts);
  }
}

const MAX_RESPONSE = 64 * 1024;

class GrpcProbe implements Probe, H2StreamHandler {
  readonly #host: HostImpl;
  readonly #sink: ProbeSink;
  readonly #opts: GrpcProbeOptions;
  #h2: H2ClientConnection | null = null;
  /** The connection got a GOAWAY: close it after the check in flight. */
  #goaway = false;
  #stream: H2Stream | null = null;
  #gen = 0;
  #decoder = new GrpcFrameDecoder(MAX_RESPONSE);
  #message: Uint8Array | null = null;

  constructor(host: HostImpl, sink: ProbeSink, opts: GrpcProbeOptions) {
    this.#host = host;
    this.#sink = sink;
    this.#opts = opts;
  }

  start(): void {
    const gen = ++this.#gen;
    void this.#send(gen);
  }

  async #send(gen: number): Promise<void> {
    let h2 = this.#h2;
    if (h2 === null || h2.available() === 0) {
      this.#drop();
      let conn: Deno.Conn;
      try {
        conn = await (this.#opts.connect ?? plainConnect)(this.#host);
      } catch {
        if (gen === this.#gen) this.#sink.onProbeResult(ProbeOutcome.NETWORK_FAILURE);
        return;
      }
      if (gen !== this.#gen) return closeQuietly(conn);
      if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
      h2 = this.#open(conn);
    }
    this.#decoder = new GrpcFrameDecoder(MAX_RESPONSE);
    this.#message = null;
    const st = h2.request(this.#opts.head, false, this);
    if (st === null) return this.#finish(ProbeOutcome.NETWORK_FAILURE);
    this.#stream = st;
    st.sendData(this.#opts.request, true);
  }

  #open(conn: Deno.Conn): H2ClientConnection {
    const h2: H2ClientConnection = new H2ClientConnection(conn, {
      events: {
        onGoaway: () => {
          if (this.#h2 !== h2) return;
          this.#goaway = true;
          if (this.#stream === null) this.#drop();
        },
        onClose: () => {
          if (this.#h2 === h2) this.#h2 = null;
        },
      },
    });
    this.#h2 = h2;
    this.#goaway = false;
    void h2.start();
    return h2;
  }

  /** Reports the check's outcome once and closes the connection when it is not to be reused. */
  #finish(outcome: ProbeOutcome): void {
    this.#stream = null;
    if (!this.#opts.reuseConnection || this.#goaway) this.#drop();
    this.#sink.onProbeResult(outcome);
  }

  onHeaders(st: H2Stream, head: H2Head, endStream: boolean): void {
    if (st !== this.#stream) return;
    const ct = head.headers.get("content-type");
    if (head.status !== 200 || ct === undefined || !ct.startsWith("application/grpc")) {
      st.reset(ErrorCode.CANCEL);
      return this.#finish(ProbeOutcome.ACTIVE_FAILURE);
    }
    if (endStream) this.#complete(head.headers); // trailers-only
  }

  onData(st: H2Stream, data: Uint8Array): void {
    if (st !== this.#stream) return;
    try {
      for (const m of this.#decoder.push(data)) {
        if (this.#message !== null) throw new RangeError("More than one response message");
        this.#message = m;
      }
    } catch {
      st.reset(ErrorCode.CANCEL);
      this.#finish(ProbeOutcome.ACTIVE_FAILURE);
    }
  }

  onTrailers(st: H2Stream, trailers: HeaderMap): void {
    if (st === this.#stream) this.#complete(trailers);
  }

  onReset(st: H2Stream): void {
    if (st === this.#stream) this.#finish(ProbeOutcome.NETWORK_FAILURE);
  }

  #complete(md: HeaderMap): void {
    if (md.get("grpc-status") !== "0" || this.#message === null) {
      return this.#finish(ProbeOutcome.ACTIVE_FAILURE);
    }
    let status: number;
    try {
      status = decodeServingStatus(this.#message);
    } catch {
      status = ServingStatus.UNKNOWN;
    }
    this.#finish(status === ServingStatus.SERVING ? ProbeOutcome.SUCCESS : ProbeOutcome.ACTIVE_FAILURE);
  }

  #drop(): void {
    const h2 = this.#h2;
    this.#h2 = null;
    this.#stream = null;
    h2?.close();
  }

  /** Timeout: reset the stream (keeping the connection) or, without reuse or after GOAWAY, close it. */
  cancel(): void {
    this.#gen++;
    const st = this.#stream;
    this.#stream = null;
    if (st !== null && this.#opts.reuseConnection && !this.#goaway) st.reset(ErrorCode.CANCEL);
    else this.#drop();
  }

  close(): void {
    this.#gen++;
    this.#drop();
  }
}

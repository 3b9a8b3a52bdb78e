/**
 * node:tls for what Deno's own TLS API cannot do: request and read client certificates (denoland/deno#26825)
 * and bound the protocol versions. Used only by contexts that need it (downstream chains validating client
 * certificates or capping the version at TLS 1.2, upstream contexts with version bounds, revocation lists or
 * ACCEPT_UNTRUSTED); everything else keeps Deno's TLS. Both directions end in `NodeTlsConn`, which gives a
 * node TLSSocket the `Deno.Conn` shape nuncio's codecs and pumps use (read/write/closeWrite/close, addresses).
 * Downstream, the TLS socket runs over the accepted `Deno.Conn` through a small Duplex (the ClientHello bytes
 * the tls_inspector already read are replayed first, and the server's first flight is sniffed on its way out).
 */
import type { Duplex as DuplexType } from "node:stream";
import type { SecureContext, TLSSocket } from "node:tls";
import { connRead, connWriteAll } from "../network/raw_io.ts";
import { type CertifiedKey, selectCertificate } from "./cert_store.ts";
import type { PeerCertificate } from "./peer_verify.ts";
import type { ServerHelloSniffer } from "./tls_facts.ts";
import type { VersionBounds } from "./tls_params.ts";

type NodeTls = typeof import("node:tls");
type NodeStream = { Duplex: typeof import("node:stream").Duplex };
interface NodeMods {
  tls: NodeTls;
  stream: NodeStream;
}

let loading: Promise<NodeMods> | undefined;

/** Loads node:tls and node:stream once (contexts that never need them never load them). */
export function loadNodeTls(): Promise<NodeMods> {
  if (loading === undefined) {
    loading = Promise.all([import("node:tls"), import("node:stream")]).then(([tls, stream]) => ({
      tls,
      stream: { Duplex: stream.Duplex },
    }));
  }
  return loading;
}

/** node:tls's protocol name for a version bound. */
function versionName(v: 2 | 3): "TLSv1.2" | "TLSv1.3" {
  return v === 3 ? "TLSv1.3" : "TLSv1.2";
}

/** A byte stream Duplex over a Deno connection: `prefix` is read first; `sniff` sees every byte written. */
function connDuplex(
  stream: NodeStream,
  conn: Deno.Conn,
  prefix: Uint8Array | null,
  sniff: ServerHelloSniffer | undefined,
): DuplexType {
  const buf = new Uint8Array(16 * 1024);
  let first = prefix !== null && prefix.length > 0 ? prefix : null;
  const d: DuplexType = new stream.Duplex({
    read() {
      if (first !== null) {
        const p = first;
        first = null;
        // after node's TLSSocket started (a nextTick after construction): a handshake failing on these bytes
        // before that would crash its start
        setTimeout(() => d.push(p), 0);
        return;
      }
      connRead(conn, buf).then(
        (n) => d.push(n === null || n === 0 ? null : buf.slice(0, n)),
        (e) => d.destroy(e),
      );
    },
    write(chunk: Uint8Array, _enc: string, cb: (e?: Error | null) => void) {
      if (sniff !== undefined && sniff.wanting) sniff.feed(chunk);
      connWriteAll(conn, chunk).then(() => cb(), (e) => cb(e));
    },
    final(cb: (e?: Error | null) => void) {
      conn.closeWrite().then(() => cb(), () => cb());
    },
    destroy(err: Error | null, cb: (e: Error | null) => void) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      cb(err);
    },
  });
  return d;
}

interface Waiter {
  p: Uint8Array;
  resolve: (n: number | null) => void;
  reject: (e: Error) => void;
}

/** The part of a Deno.Conn that a NodeTlsConn reports and forwards to (addresses, no-delay, ref). */
export interface ConnSide {
  readonly remoteAddr: Deno.Addr;
  readonly localAddr: Deno.Addr;
  setNoDelay?(on?: boolean): void;
  ref?(): void;
  unref?(): void;
}

/**
 * A node TLSSocket with the `Deno.Conn` surface the byte path uses (one read at a time, as nuncio's loops do):
 * reads copy from the socket's buffered chunks, writes resolve once the TLS layer took the bytes. Built once
 * per connection.
 */
export class NodeTlsConn {
  readonly #s: TLSSocket;
  readonly #side: ConnSide;
  #chunk: Uint8Array | null = null;
  #ended = false;
  #err: Error | null = null;
  #wait: Waiter | null = null;
  #closed = false;

  constructor(s: TLSSocket, side: ConnSide) {
    this.#s = s;
    this.#side = side;
    s.on("readable", () => this.#pump());
    s.on("end", () => {
      this.#ended = true;
      this.#pump();
    });
    s.on("close", () => {
      this.#ended = true;
      this.#pump();
    });
    s.on("error", (e: Error) => {
      this.#err = e;
      this.#pump();
    });
  }

  /** The TLS socket (handshake facts). */
  get socket(): TLSSocket {
    return this.#s;
  }

  #take(p: Uint8Array): number {
    const c = this.#chunk!;
    const n = Math.min(p.length, c.length);
    p.set(n === c.length ? c : c.subarray(0, n));
    this.#chunk = n === c.length ? null : c.subarray(n);
    return n;
  }

  #pump(): void {
    const w = this.#wait;
    if (w === null) return;
    if (this.#chunk === null && !this.#closed) {
      const c = this.#s.read() as Uint8Array | null;
      if (c !== null && c.length > 0) this.#chunk = c;
    }
    if (this.#chunk !== null) {
      this.#wait = null;
      w.resolve(this.#take(w.p));
    } else if (this.#closed) {
      this.#wait = null;
      w.resolve(null);
    } else if (this.#err !== null) {
      this.#wait = null;
      w.reject(this.#err);
    } else if (this.#ended) {
      this.#wait = null;
      w.resolve(null);
    }
  }

  /** Reads decrypted bytes into `p`; null at the end of the stream (or once closed). */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#chunk !== null) return Promise.resolve(this.#take(p));
    if (this.#wait !== null) return Promise.reject(new Error("Concurrent reads on a TLS connection"));
    return new Promise((resolve, reject) => {
      this.#wait = { p, resolve, reject };
      this.#pump();
    });
  }

  /** Writes all of `p` (resolves its length once the TLS layer consumed it). */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.#s.destroyed) {
      return Promise.reject(new Deno.errors.BadResource("TLS socket closed"));
    }
    if (p.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      this.#s.write(p, (e?: Error | null) => (e ? reject(e) : resolve(p.length)));
    });
  }

  /** Sends close_notify and half-closes. */
  closeWrite(): Promise<void> {
    if (this.#closed || this.#s.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.#s.end(() => resolve()));
  }

  /** Closes the connection; a pending read resolves null. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#s.destroy();
    this.#pump();
  }

  /** Peer address. */
  get remoteAddr(): Deno.Addr {
    return this.#side.remoteAddr;
  }

  /** Local address. */
  get localAddr(): Deno.Addr {
    return this.#side.localAddr;
  }

  /** TCP_NODELAY on the socket. */
  setNoDelay(on = true): void {
    try {
      this.#side.setNoDelay?.(on);
    } catch {
      // closed
    }
  }

  /** Keeps the event loop alive while open. */
  ref(): void {
    this.#side.ref?.();
  }

  /** Lets the event loop exit while open. */
  unref(): void {
    this.#side.unref?.();
  }

  /** Stream views are not offered (the byte path reads and writes directly). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    throw new Error("NodeTlsConn has no readable stream");
  }

  /** Stream views are not offered (the byte path reads and writes directly). */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    throw new Error("NodeTlsConn has no writable stream");
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** This wrapper typed as the Deno.Conn the filter chain and pools expect. */
  asConn(): Deno.Conn {
    return this as unknown as Deno.Conn;
  }
}

interface DetailedCert {
  raw?: Uint8Array;
  subjectaltname?: string;
  issuerCertificate?: DetailedCert;
}

/** The peer certificate of a finished handshake (null when none), with the chain node verified. */
export function peerOf(s: TLSSocket, verifyError: string): PeerCertificate | null {
  const pc = s.getPeerCertificate(true) as unknown as DetailedCert;
  if (!pc || pc.raw === undefined) return null;
  const chain: Uint8Array[] = [];
  const seen = new Set<DetailedCert>();
  for (let c: DetailedCert | undefined = pc; c?.raw !== undefined && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    chain.push(c.raw);
  }
  return { chain, subjectAltName: pc.subjectaltname ?? "", trusted: verifyError === "" };
}

/** The runtime's chain verification result of a TLS socket ("" when verified), read from its handle. */
export function verifyErrorOf(s: TLSSocket): string {
  // deno-lint-ignore no-explicit-any -- node's TLSWrap handle (public in Node as `ssl`)
  const h = (s as any).ssl ?? (s as any)._handle;
  const e = h?.verifyError?.();
  if (e === undefined || e === null || e === "") return "";
  return typeof e === "string" ? e : String((e as { code?: string }).code ?? e);
}

/** Settings of a NodeTlsServer. */
export interface NodeServerOptions {
  certs: readonly CertifiedKey[];
  alpn: readonly string[];
  bounds: VersionBounds;
  /** Trusted CA PEM for verifying client certificates. */
  ca: string | undefined;
  /** Send a CertificateRequest. */
  requestCert: boolean;
}

/** What a downstream node:tls handshake produced. */
export interface NodeAccepted {
  conn: NodeTlsConn;
  socket: TLSSocket;
}

/** The server side of node:tls for one set of certificates and validation settings (rebuilt when they change). */
export class NodeTlsServer {
  readonly #o: NodeServerOptions;
  readonly #contexts: SecureContext[];
  readonly #tls: NodeTls;
  readonly #stream: NodeStream;

  private constructor(o: NodeServerOptions, tls: NodeTls, stream: NodeStream) {
    this.#o = o;
    this.#tls = tls;
    this.#stream = stream;
    this.#contexts = o.certs.map((c) =>
      tls.createSecureContext({
        cert: c.cert,
        key: c.key,
        ca: o.ca,
        minVersion: versionName(o.bounds.min),
        maxVersion: versionName(o.bounds.max),
      })
    );
  }

  /** Builds the secure contexts (loads node:tls on first use). */
  static async create(o: NodeServerOptions): Promise<NodeTlsServer> {
    const { tls, stream } = await loadNodeTls();
    return new NodeTlsServer(o, tls, stream);
  }

  #pick(sni: string): SecureContext {
    return this.#contexts[this.#o.certs.indexOf(selectCertificate(this.#o.certs, sni))] ?? this.#contexts[0];
  }

  /**
   * Runs the server handshake on `outer`, whose first bytes `prefix` were already read; resolves once it is
   * complete (rejects when it fails or the connection closes first; `outer` is closed then).
   */
  accept(outer: Deno.Conn, prefix: Uint8Array, sniff?: ServerHelloSniffer): Promise<NodeAccepted> {
    const o = this.#o;
    const duplex = connDuplex(this.#stream, outer, prefix, sniff);
    const sock = new this.#tls.TLSSocket(
      duplex,
      {
        isServer: true,
        secureContext: this.#contexts[0],
        requestCert: o.requestCert,
        rejectUnauthorized: false,
        ALPNProtocols: o.alpn.length > 0 ? [...o.alpn] : undefined,
        SNICallback: o.certs.length > 1
          ? (name: string, cb: (e: Error | null, ctx?: SecureContext) => void) => cb(null, this.#pick(name))
          : undefined,
      } as ConstructorParameters<NodeTls["TLSSocket"]>[1],
    );
    const conn = new NodeTlsConn(sock, outer as Deno.TcpConn);
    return new Promise((resolve, reject) => {
      const fail = (e?: Error) => {
        cleanup();
        // the replayed ClientHello can fail the handshake before the socket's own start (a nextTick) ran, and
        // node's TLSSocket crashes starting a destroyed socket: destroy it after that tick
        setTimeout(() => conn.close(), 0);
        reject(e ?? new Error("Connection closed during the TLS handshake"));
      };
      const onClose = () => fail();
      const ok = () => {
        cleanup();
        resolve({ conn, socket: sock });
      };
      const cleanup = () => {
        sock.off("secure", ok);
        sock.off("error", fail);
        sock.off("close", onClose);
      };
      sock.once("secure", ok);
      sock.once("error", fail);
      sock.once("close", onClose);
    });
  }
}

/** Options of an upstream node:tls connect. */
export interface NodeConnectOptions {
  hostname: string;
  port: number;
  /** SNI; undefined sends none. */
  servername: string | undefined;
  /** Trusted CA PEM; undefined uses the runtime's roots. */
  ca: string | undefined;
  /** Client certificate. */
  cert?: CertifiedKey;
  alpn: readonly string[] | undefined;
  bounds: VersionBounds;
  /** Fail the handshake on an untrusted chain (false for ACCEPT_UNTRUSTED: checked by the caller). */
  rejectUnauthorized: boolean;
  /** A TCP connection to run TLS over (a custom connect); else node opens one. */
  tcp?: Deno.Conn;
  signal?: AbortSignal;
}

/** Connects and completes a client handshake with node:tls; rejects with the handshake's error. */
export async function nodeConnect(o: NodeConnectOptions): Promise<NodeAccepted> {
  const { tls, stream } = await loadNodeTls();
  const where = o.tcp !== undefined
    ? { socket: connDuplex(stream, o.tcp, null, undefined) }
    : { host: o.hostname, port: o.port };
  const sock = tls.connect(
    {
      ...where,
      servername: o.servername,
      ca: o.ca,
      cert: o.cert?.cert,
      key: o.cert?.key,
      ALPNProtocols: o.alpn ? [...o.alpn] : undefined,
      minVersion: versionName(o.bounds.min),
      maxVersion: versionName(o.bounds.max),
      rejectUnauthorized: o.rejectUnauthorized,
      // SANs are matched by nuncio (match_typed_subject_alt_names), as Envoy never checks the host name
      checkServerIdentity: () => undefined,
    } as import("node:tls").ConnectionOptions,
  );
  const side: ConnSide = o.tcp ?? {
    get remoteAddr(): Deno.Addr {
      return {
        transport: "tcp",
        hostname: sock.remoteAddress ?? o.hostname,
        port: sock.remotePort ?? o.port,
      };
    },
    get localAddr(): Deno.Addr {
      return { transport: "tcp", hostname: sock.localAddress ?? "", port: sock.localPort ?? 0 };
    },
    setNoDelay: (on = true) => void sock.setNoDelay(on),
    ref: () => void sock.ref(),
    unref: () => void sock.unref(),
  };
  const conn = new NodeTlsConn(sock, side);
  return await new Promise<NodeAccepted>((resolve, reject) => {
    const abort = () => fail(new Error("Connect aborted"));
    const fail = (e?: Error) => {
      cleanup();
      conn.close();
      reject(e ?? new Error("Connection closed during the TLS handshake"));
    };
    const onClose = () => fail();
    const ok = () => {
      cleanup();
      resolve({ conn, socket: sock });
    };
    const cleanup = () => {
      sock.off("secureConnect", ok);
      sock.off("error", fail);
      sock.off("close", onClose);
      o.signal?.removeEventListener("abort", abort);
    };
    sock.once("secureConnect", ok);
    sock.once("error", fail);
    sock.once("close", onClose);
    o.signal?.addEventListener("abort", abort, { once: true });
  });
}

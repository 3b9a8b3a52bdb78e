/**
 * The accept path of listeners with TLS or SNI/ALPN-matched filter chains: reads the ClientHello from plain
 * TCP (the tls_inspector), picks the filter chain, terminates TLS for TLS chains (or replays the bytes for
 * plain chains), completes the handshake under the listener_filters_timeout, then hands the connection on.
 * Chains that validate client certificates or cap the version at TLS 1.2 terminate on node:tls
 * (`DownstreamTls.usesNode`) and have the peer checked here; a TLS 1.3 minimum on Deno's TLS is enforced from
 * the ClientHello. Every handshake counts the listener's `ssl.*` stats (ssl_stats.ts).
 */
import type { Logger } from "../common/log.ts";
import type { CertificateFacts, DownstreamTlsInfo } from "../common/tls_info.ts";
import type { Counter, Scope } from "../stats/store.ts";
import { tlsCrypto } from "./cert_store.ts";
import { type ChainMatch, type ChainSelector, explainChain } from "./chain_select.ts";
import { type HelloResult, MAX_HELLO_BYTES, parseClientHello } from "./client_hello.ts";
import { nodeTlsModule } from "./node_tls_lazy.ts";
import { type PeerCertificate, verifyPeer } from "./peer_verify.ts";
import { PrefixedConn } from "./prefixed_conn.ts";
import { type SslStats, sslStatsFor } from "./ssl_stats.ts";
import type { DownstreamTls } from "./tls_downstream.ts";
import { certificateFacts, ServerHelloSniffer, x509Facts } from "./tls_facts.ts";

/** How a connection arrived, passed with it to the filter chain. */
export interface ArrivalInfo {
  /** The TLS session: SNI, ALPN, and what else could be observed (see tls_facts.ts). */
  tls?: DownstreamTlsInfo;
  /** The client's socket when TLS ran over the loopback splice (its addresses are the real ones). */
  addressesOf?: Deno.Conn;
  /** Why the chain was chosen (set only when debug logging is on). */
  chainReason?: string;
}

/** Settings of a TlsAccept. */
export interface TlsAcceptOptions<C extends { tls?: DownstreamTls; match: ChainMatch }> {
  /** The listener's filter chains. */
  chains: readonly C[];
  /** Chooses a chain from the connection's facts. */
  selector: ChainSelector;
  /** True: plain TCP sockets whose ClientHello is read here; false: sockets from a TLS listener (one chain). */
  inspect: boolean;
  /** listener_filters_timeout in ms. */
  timeoutMs: number;
  /** The listener's scope (`ssl.*`, `no_filter_chain_match`). */
  scope: Scope;
  /** Called with the ready connection and its chain. */
  onReady: (conn: Deno.Conn, chain: C, info: ArrivalInfo) => void;
  /** Logger. */
  log: Logger;
}

const RAW: HelloResult = { kind: "raw" };

function safeClose(c: { close(): void } | undefined): void {
  try {
    c?.close();
  } catch {
    // already closed
  }
}

function remoteOf(c: Deno.Conn): string {
  const a = c.remoteAddr as Deno.NetAddr;
  return `${a.hostname}:${a.port}`;
}

function tlsInfo(
  sni: string,
  alpn: string,
  sniff: ServerHelloSniffer | null,
  local: DownstreamTlsInfo["local"],
): DownstreamTlsInfo {
  const f = sniff?.facts;
  return {
    sni,
    alpn,
    version: f?.version ?? "",
    cipher: f?.cipher ?? "",
    sessionId: f?.sessionId ?? "",
    local,
    peer: null,
  };
}

/** Peer certificate facts by SHA-256 fingerprint: clients reconnect with the same certificate (bounded). */
const peerFactsCache = new Map<string, { facts: CertificateFacts; chain: string }>();

/** Access log / XFCC facts of a verified peer: the leaf's, and the chain as URL-encoded PEM. */
function peerFacts(peer: PeerCertificate): { facts: CertificateFacts; chain: string } {
  const c = tlsCrypto();
  const key = c.createHash("sha256").update(peer.chain[0]).digest("hex") + peer.chain.length;
  let f = peerFactsCache.get(key);
  if (f !== undefined) return f;
  const certs = peer.chain.map((d) => new c.X509Certificate(d));
  f = { facts: x509Facts(certs[0]), chain: certs.map((x) => encodeURIComponent(x.toString())).join("") };
  if (peerFactsCache.size >= 256) peerFactsCache.delete(peerFactsCache.keys().next().value!);
  peerFactsCache.set(key, f);
  return f;
}

/** Runs inspection and handshakes for one listener; one instance per listener, one `handle` per connection. */
export class TlsAccept<C extends { tls?: DownstreamTls; match: ChainMatch }> {
  readonly #o: TlsAcceptOptions<C>;
  readonly #pending = new Set<Deno.Conn>();
  readonly #ssl: SslStats;
  readonly #noChain: Counter;

  constructor(opts: TlsAcceptOptions<C>) {
    this.#o = opts;
    this.#ssl = sslStatsFor(opts.scope);
    this.#noChain = opts.scope.counter("no_filter_chain_match");
  }

  /** Takes an accepted socket (TLS when `direct`); never rejects. */
  async handle(conn: Deno.Conn, direct: boolean): Promise<void> {
    const o = this.#o;
    this.#pending.add(conn);
    let tls: { close(): void } | undefined;
    const timer = setTimeout(() => {
      safeClose(tls);
      safeClose(conn);
    }, o.timeoutMs);
    try {
      if (direct) {
        const tc = conn as Deno.TlsConn;
        tls = tc;
        const info = await tc.handshake();
        // Deno.listenTls shows no version, cipher or resumption: only the handshake and (no) client certificate
        this.#ssl.handshakeDone({
          version: "",
          cipher: "",
          curve: "",
          resumed: false,
          peerCertificate: false,
        });
        // Deno.listenTls shows neither SNI nor version/cipher; the served certificate is known when unique
        const ctx = o.chains[0].tls!;
        const local = ctx.certificates.length === 1 ? certificateFacts(ctx.certificates[0]) : null;
        o.onReady(tc, o.chains[0], {
          tls: tlsInfo("", info.alpnProtocol ?? "", null, local),
          chainReason: o.log.enabled("debug") ? "the listener's only chain (TLS listener socket)" : undefined,
        });
        return;
      }
      const { hello, prefix } = await this.#readHello(conn);
      const isTls = hello.kind === "tls";
      const facts = {
        port: (conn.localAddr as Deno.NetAddr).port,
        sni: isTls ? hello.sni : "",
        transport: isTls ? "tls" : "raw_buffer",
        alpn: isTls ? hello.alpn : [],
      };
      const i = o.selector.select(facts);
      const reason = i >= 0 && o.log.enabled("debug") ? explainChain(o.chains[i].match, facts) : undefined;
      if (i < 0) {
        if (o.log.enabled("debug")) {
          o.log.debug(`closing connection from ${remoteOf(conn)}: no matching filter chain found`);
        }
        this.#noChain.inc();
        safeClose(conn);
        return;
      }
      const chain = o.chains[i];
      if (chain.tls === undefined) {
        o.onReady(new PrefixedConn(conn, prefix).asConn(), chain, { chainReason: reason });
        return;
      }
      if (!isTls) {
        this.#ssl.connection_error.inc();
        safeClose(conn);
        return;
      }
      const ctx = chain.tls;
      if (ctx.usesNode) {
        await this.#acceptNode(conn, prefix, hello, chain, reason, (c) => (tls = c));
        return;
      }
      if (ctx.bounds.min === 3 && !hello.tls13) {
        // tls_minimum_protocol_version TLSv1_3: rustls would settle for TLS 1.2 with this client
        this.#ssl.connection_error.inc();
        o.log.debug(`TLS accept failed: ${remoteOf(conn)} does not offer TLS 1.3`);
        safeClose(conn);
        return;
      }
      const sniff = new ServerHelloSniffer(hello.sessionId);
      const tc = await ctx.terminate(conn, prefix, sniff);
      tls = tc;
      const info = await tc.handshake();
      const f = sniff.facts;
      this.#ssl.handshakeDone({
        version: f?.version ?? "",
        cipher: f?.cipher ?? "",
        curve: f?.curve ?? "",
        resumed: f?.resumed ?? false,
        peerCertificate: false,
      });
      const local = certificateFacts(ctx.servedCertificate(hello.sni));
      o.onReady(tc, chain, {
        tls: tlsInfo(hello.sni, info.alpnProtocol ?? "", sniff, local),
        addressesOf: conn,
        chainReason: reason,
      });
    } catch (e) {
      this.#ssl.connection_error.inc();
      o.log.debug(`TLS accept failed: ${(e as Error).message}`);
      safeClose(tls);
      safeClose(conn);
    } finally {
      clearTimeout(timer);
      this.#pending.delete(conn);
    }
  }

  /**
   * A node:tls chain: handshake (requesting a client certificate when the validation context says so), then the
   * peer checks Envoy's validator makes (chain, revocation, SANs, pins), counted as `ssl.fail_verify_*`. A refused
   * peer is closed right after the handshake (Envoy fails the handshake itself; in TLS 1.3 clients see it the
   * same way, on their first read).
   */
  async #acceptNode(
    conn: Deno.Conn,
    prefix: Uint8Array,
    hello: Extract<HelloResult, { kind: "tls" }>,
    chain: C,
    reason: string | undefined,
    track: (c: { close(): void }) => void,
  ): Promise<void> {
    const ctx = chain.tls!;
    const sniff = new ServerHelloSniffer(hello.sessionId);
    const { accepted, validation } = await ctx.terminateNode(conn, prefix, sniff);
    const { conn: tc, socket } = accepted;
    track(tc);
    const n = validation?.request ? nodeTlsModule() : undefined; // loaded: this connection came through it
    const peer = n !== undefined ? n.peerOf(socket, n.verifyErrorOf(socket)) : null;
    if (validation !== undefined && validation.request) {
      const failure = verifyPeer(validation, peer);
      if (failure !== undefined) {
        this.#ssl.verifyFailed(failure);
        if (!validation.acceptUntrusted) {
          this.#o.log.debug(
            `TLS accept failed: client certificate refused (${failure}) from ${remoteOf(conn)}`,
          );
          tc.close();
          return;
        }
      }
    }
    const version = socket.getProtocol() ?? sniff.facts?.version ?? "";
    const cipher = socket.getCipher()?.name ?? sniff.facts?.cipher ?? "";
    this.#ssl.handshakeDone({
      version,
      cipher,
      curve: sniff.facts?.curve ?? "",
      resumed: socket.isSessionReused(),
      peerCertificate: peer !== null,
    });
    const pf = peer !== null ? peerFacts(peer) : undefined;
    const sni = hello.sni || ((socket as unknown as { servername?: string | false }).servername || "");
    const info: DownstreamTlsInfo = {
      sni,
      alpn: typeof socket.alpnProtocol === "string" ? socket.alpnProtocol : "",
      version,
      cipher,
      sessionId: sniff.facts?.sessionId ?? "",
      local: certificateFacts(ctx.servedCertificate(sni)),
      peer: pf?.facts ?? null,
      peerChain: pf?.chain,
    };
    this.#o.onReady(tc.asConn(), chain, { tls: info, chainReason: reason });
  }

  /** Reads until a whole ClientHello (or clearly not TLS, or EOF); returns what was read. */
  async #readHello(conn: Deno.Conn): Promise<{ hello: HelloResult; prefix: Uint8Array }> {
    let buf = new Uint8Array(4096);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len >= MAX_HELLO_BYTES) return { hello: RAW, prefix: buf };
        const next = new Uint8Array(Math.min(buf.length * 2, MAX_HELLO_BYTES));
        next.set(buf);
        buf = next;
      }
      const n = await conn.read(buf.subarray(len));
      if (n === null) return { hello: RAW, prefix: buf.subarray(0, len) };
      len += n;
      const hello = parseClientHello(buf.subarray(0, len));
      if (hello.kind !== "more") return { hello, prefix: buf.subarray(0, len) };
    }
  }

  /** Closes connections still being inspected or handshaken (listener shutdown). */
  close(): void {
    for (const c of this.#pending) safeClose(c);
    this.#pending.clear();
    for (const c of this.#o.chains) c.tls?.close();
  }
}

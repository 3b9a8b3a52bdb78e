/**
 * The accept path of listeners with TLS or SNI/ALPN-matched filter chains: reads the ClientHello from plain
 * TCP (the tls_inspector), picks the filter chain, terminates TLS for TLS chains (or replays the bytes for
 * plain chains), completes the handshake under the listener_filters_timeout, then hands the connection on.
 */
import type { Logger } from "../common/log.ts";
import type { DownstreamTlsInfo } from "../common/tls_info.ts";
import type { Counter, Scope } from "../stats/store.ts";
import { type ChainMatch, type ChainSelector, explainChain } from "./chain_select.ts";
import { type HelloResult, MAX_HELLO_BYTES, parseClientHello } from "./client_hello.ts";
import { PrefixedConn } from "./prefixed_conn.ts";
import type { DownstreamTls } from "./tls_downstream.ts";
import { certificateFacts, ServerHelloSniffer } from "./tls_facts.ts";

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
    // downstream mTLS (require_client_certificate) will fill this
    peer: null,
  };
}

/** Runs inspection and handshakes for one listener; one instance per listener, one `handle` per connection. */
export class TlsAccept<C extends { tls?: DownstreamTls; match: ChainMatch }> {
  readonly #o: TlsAcceptOptions<C>;
  readonly #pending = new Set<Deno.Conn>();
  readonly #handshake: Counter;
  readonly #error: Counter;
  readonly #noChain: Counter;

  constructor(opts: TlsAcceptOptions<C>) {
    this.#o = opts;
    this.#handshake = opts.scope.counter("ssl.handshake");
    this.#error = opts.scope.counter("ssl.connection_error");
    this.#noChain = opts.scope.counter("no_filter_chain_match");
  }

  /** Takes an accepted socket (TLS when `direct`); never rejects. */
  async handle(conn: Deno.Conn, direct: boolean): Promise<void> {
    const o = this.#o;
    this.#pending.add(conn);
    let tls: Deno.TlsConn | undefined;
    const timer = setTimeout(() => {
      safeClose(tls);
      safeClose(conn);
    }, o.timeoutMs);
    try {
      if (direct) {
        tls = conn as Deno.TlsConn;
        const info = await tls.handshake();
        this.#handshake.inc();
        // Deno.listenTls shows neither SNI nor version/cipher; the served certificate is known when unique
        const ctx = o.chains[0].tls!;
        const local = ctx.certificates.length === 1 ? certificateFacts(ctx.certificates[0]) : null;
        o.onReady(tls, o.chains[0], {
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
        this.#error.inc();
        safeClose(conn);
        return;
      }
      const sniff = new ServerHelloSniffer();
      tls = await chain.tls.terminate(conn, prefix, sniff);
      const info = await tls.handshake();
      this.#handshake.inc();
      const local = certificateFacts(chain.tls.servedCertificate(hello.sni));
      o.onReady(tls, chain, {
        tls: tlsInfo(hello.sni, info.alpnProtocol ?? "", sniff, local),
        addressesOf: conn,
        chainReason: reason,
      });
    } catch (e) {
      this.#error.inc();
      o.log.debug(`TLS accept failed: ${(e as Error).message}`);
      safeClose(tls);
      safeClose(conn);
    } finally {
      clearTimeout(timer);
      this.#pending.delete(conn);
    }
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

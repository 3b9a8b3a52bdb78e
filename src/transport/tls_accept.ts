/**
 * The accept path of listeners with TLS or SNI/ALPN-matched filter chains: reads the ClientHello from plain
 * TCP (the tls_inspector), picks the filter chain, terminates TLS for TLS chains (or replays the bytes for
 * plain chains), completes the handshake under the listener_filters_timeout, then hands the connection on.
 */
import type { Logger } from "../common/log.ts";
import type { Counter, Scope } from "../stats/store.ts";
import type { ChainSelector } from "./chain_select.ts";
import { type HelloResult, MAX_HELLO_BYTES, parseClientHello } from "./client_hello.ts";
import { PrefixedConn } from "./prefixed_conn.ts";
import type { DownstreamTls } from "./tls_downstream.ts";

/** How a connection arrived, passed with it to the filter chain. */
export interface ArrivalInfo {
  /** SNI and negotiated ALPN ("" when none). */
  tls?: { readonly sni: string; readonly alpn: string };
  /** The client's socket when TLS ran over the loopback splice (its addresses are the real ones). */
  addressesOf?: Deno.Conn;
}

/** Settings of a TlsAccept. */
export interface TlsAcceptOptions<C extends { tls?: DownstreamTls }> {
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

/** Runs inspection and handshakes for one listener; one instance per listener, one `handle` per connection. */
export class TlsAccept<C extends { tls?: DownstreamTls }> {
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
        o.onReady(tls, o.chains[0], { tls: { sni: "", alpn: info.alpnProtocol ?? "" } });
        return;
      }
      const { hello, prefix } = await this.#readHello(conn);
      const isTls = hello.kind === "tls";
      const i = o.selector.select({
        port: (conn.localAddr as Deno.NetAddr).port,
        sni: isTls ? hello.sni : "",
        transport: isTls ? "tls" : "raw_buffer",
        alpn: isTls ? hello.alpn : [],
      });
      if (i < 0) {
        this.#noChain.inc();
        safeClose(conn);
        return;
      }
      const chain = o.chains[i];
      if (chain.tls === undefined) {
        o.onReady(new PrefixedConn(conn, prefix).asConn(), chain, {});
        return;
      }
      if (!isTls) {
        this.#error.inc();
        safeClose(conn);
        return;
      }
      tls = await chain.tls.terminate(conn, prefix);
      const info = await tls.handshake();
      this.#handshake.inc();
      o.onReady(tls, chain, { tls: { sni: hello.sni, alpn: info.alpnProtocol ?? "" }, addressesOf: conn });
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

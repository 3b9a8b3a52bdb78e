/**
 * A listener: binds one address (reusePort so workers and a new process can share it), accepts
 * connections and runs each through its network filter chain.
 */
import type { Clock } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type {
  ConnectionEnd,
  DownstreamConnection,
  NetworkFilterFactory,
  ReadFilter,
  TerminalFilter,
} from "../network/filter.ts";
import { FilterStatus } from "../network/filter.ts";
import type { Counter, Gauge, Histogram, Scope } from "../stats/store.ts";
import { type ChainMatch, ChainSelector, explainChain, needsInspection } from "../transport/chain_select.ts";
import type { DownstreamTls } from "../transport/tls_downstream.ts";
import { ActiveConnection, NO_OBSERVERS } from "./connection.ts";
import { slimTcpConn } from "../network/slim_conn.ts";
import { TlsAccept } from "../transport/tls_accept.ts";
import { DefaultingSelector } from "./default_chain.ts";
import type { ProxyProtocolFilter } from "./proxy_protocol.ts";
import { isLocalRestored, PrefixedConn } from "../transport/prefixed_conn.ts";
import { originalDst } from "../transport/sockopt.ts";

const log = new Logger("conn_handler");
/** Connection ids are unique per event loop across all its listeners (Envoy's `[C<id>]`, %CONNECTION_ID%). */
let nextConnectionId = 0;
/** Keys of direct TLS sockets bound before their certificates arrived: unique, never handed over. */
let pendingSockets = 0;

/** Everything a listener needs, built by the snapshot builder from the parsed config. */
export interface ListenerSpec {
  /** Listener name. */
  name: string;
  /** Bind address. */
  hostname: string;
  /** Bind port (0 picks a free one; see `port` after start). */
  port: number;
  /** Network filter factories in chain order; the last is terminal. */
  filters: NetworkFilterFactory[];
  /** per_connection_buffer_limit_bytes. */
  bufferLimitBytes: number;
  /** Stats scope `listener.<address>.`. */
  scope: Scope;
  /** Filter chains with their matches and TLS; absent: one plain-text chain made of `filters`. */
  chains?: FilterChainSpec[];
  /** default_filter_chain: serves connections no chain of `chains` matches (else they are closed). */
  defaultChain?: FilterChainSpec;
  /** The proxy_protocol listener filter: runs first on every connection (before TLS and chain selection). */
  proxyProtocol?: ProxyProtocolFilter;
  /**
   * The original_dst listener filter and where it stands among the listener filters: "first" restores the
   * local address before proxy_protocol runs (a PROXY header's destination then wins), "last" after it.
   */
  originalDst?: "first" | "last";
  /**
   * use_original_dst: a connection whose local address a listener filter restored goes to the listener this
   * answers for that address (exact address, then the wildcard one on its port); undefined keeps it here.
   */
  handOff?: (addr: Deno.NetAddr) => Listener | undefined;
  /** bind_to_port false: binds nothing, serves only connections handed off by a use_original_dst listener. */
  bindToPort?: boolean;
  /** listener_filters_timeout in ms (ClientHello inspection plus TLS handshake); default 15000. */
  inspectTimeoutMs?: number;
  /**
   * tls_inspector is configured: every TLS connection's ClientHello is read, so SNI, TLS version and cipher
   * are known (%REQUESTED_SERVER_NAME%, %DOWNSTREAM_TLS_*%) even on a listener with one TLS chain. A chain
   * whose filters say `needsTlsFacts` has its ClientHello read without it.
   */
  tlsInspector?: boolean;
}

/** One filter chain of a listener: when it applies, its network filters and its TLS context. */
export interface FilterChainSpec {
  /** Chain name (may be ""). */
  name: string;
  /** filter_chain_match. */
  match: ChainMatch;
  /** Network filter factories in chain order; the last is terminal. */
  filters: NetworkFilterFactory[];
  /** The chain's DownstreamTlsContext; absent for raw_buffer. */
  tls?: DownstreamTls;
}

/**
 * A bound listening socket and its accept loop(s). Each accepted connection goes to `owner`, the listener
 * version serving it now: an LDS update that keeps the address hands the socket to the new version by
 * replacing `owner` (between two accepts), so no socket is closed and no queued connection is lost.
 */
interface ListenSocket {
  /** The bound socket; undefined once closed. */
  listener: Deno.Listener | undefined;
  /** Its accept loops (two for a moment after a certificate rotation rebinds a direct TLS socket). */
  accepting: Promise<void>;
  /** Receives every accepted connection. */
  owner: (conn: Deno.Conn) => void;
  readonly reusePort: boolean;
  /** What the socket is: address, and for a direct TLS socket the certificates and ALPN it was bound with. */
  key: string;
}

const NO_MATCH: ChainMatch = { serverNames: [], transportProtocol: "", applicationProtocols: [] };
const EMPTY = new Uint8Array(0);

function addrText(a: Deno.Addr): string {
  const n = a as Deno.NetAddr;
  return n.hostname?.includes(":") ? `[${n.hostname}]:${n.port}` : `${n.hostname}:${n.port}`;
}

interface ListenerStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_cx_destroy: Counter;
  downstream_cx_length_ms: Histogram;
  downstream_cx_overflow: Counter;
}

/** A bound listener with its accept loop. */
export class Listener {
  #socket: ListenSocket | undefined;
  /** The accept loops of the socket this listener closed (see `released`). */
  #closedLoops: Promise<void> | undefined;
  #connections = new Set<ActiveConnection>();
  /** Accepted sockets still in TLS inspection or handshake (not yet connections; a drain waits for them). */
  #accepts = 0;
  #stats: ListenerStats;
  #draining = false;
  #idle: (() => void) | undefined;
  #keepIdle = false;
  readonly #chains: FilterChainSpec[];
  readonly #selector: ChainSelector;
  /**
   * The TLS context when the socket itself is a TLS listener: one TLS chain, nothing to match on, no filter of
   * the chain reads SNI or TLS version/cipher/session id (Deno's TLS listener exposes only ALPN), and the context
   * neither validates client certificates nor bounds the versions (`DownstreamTls.needsInspection`).
   */
  readonly #direct: DownstreamTls | undefined;
  /** Set when connections are inspected (ClientHello) or handshaken before their chain runs. */
  readonly #tlsAccept: TlsAccept<FilterChainSpec> | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(readonly spec: ListenerSpec, readonly clock: Clock, readonly idBase = 0) {
    const matched = spec.chains ?? [{ name: "", match: NO_MATCH, filters: spec.filters }];
    // the default chain comes last; the selector answers its index when no other chain matches
    const chains = spec.defaultChain ? [...matched, { ...spec.defaultChain, match: NO_MATCH }] : matched;
    this.#chains = chains;
    const matches = matched.map((c) => c.match);
    this.#selector = spec.defaultChain ? new DefaultingSelector(matches) : new ChainSelector(matches);
    const only = chains.length === 1 ? chains[0] : undefined;
    this.#direct =
      only?.tls && !spec.tlsInspector && !needsInspection(matches) && !only.tls.needsInspection &&
        only.match.destinationPort === undefined && !only.filters.some((f) => f.needsTlsFacts)
        ? only.tls
        : undefined;
    // a PROXY header comes before any TLS bytes: the socket stays plain TCP
    if (spec.proxyProtocol !== undefined) this.#direct = undefined;
    const inspect = this.#direct === undefined && (chains.some((c) => c.tls) || needsInspection(matches));
    if (this.#direct || inspect) {
      this.#tlsAccept = new TlsAccept({
        chains,
        selector: this.#selector,
        inspect,
        timeoutMs: spec.inspectTimeoutMs ?? 15_000,
        scope: spec.scope,
        onReady: (conn, chain, opts) => this.#start(conn, chain, opts),
        log,
      });
    }
    const s = spec.scope;
    this.#stats = {
      downstream_cx_total: s.counter("downstream_cx_total"),
      downstream_cx_active: s.gauge("downstream_cx_active"),
      downstream_cx_destroy: s.counter("downstream_cx_destroy"),
      downstream_cx_length_ms: s.histogram("downstream_cx_length_ms"),
      downstream_cx_overflow: s.counter("downstream_cx_overflow"),
    };
  }

  /** The bound port (after `start`). */
  get port(): number {
    return (this.#socket?.listener?.addr as Deno.NetAddr | undefined)?.port ?? this.spec.port;
  }

  /** Number of open downstream connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Binds the socket and starts accepting; throws when the address cannot be bound. */
  start(reusePort: boolean): void {
    if (this.spec.bindToPort === false) return;
    const direct = this.#direct;
    const listener = direct === undefined
      ? Deno.listen({ hostname: this.spec.hostname, port: this.spec.port, reusePort })
      : this.#listenTls(direct, this.spec.port, reusePort);
    const sock: ListenSocket = {
      listener,
      accepting: Promise.resolve(),
      owner: (conn) => this.#handle(conn),
      reusePort,
      key: this.#socketKey(),
    };
    sock.accepting = this.#acceptLoop(sock, listener);
    this.#socket = sock;
    this.#watchRotation();
  }

  /**
   * What socket this listener needs: its address, and for a direct TLS socket (`Deno.listenTls`, whose
   * certificates and ALPN are fixed when it is bound) the certificates it serves now and its ALPN list.
   */
  #socketKey(): string {
    const addr = `${this.spec.hostname}:${this.spec.port}`;
    const d = this.#direct;
    if (d === undefined) return `tcp ${addr}`;
    // no certificates yet (SDS): the socket's resolver waits on this very context, so no other version takes it
    if (d.certificates.length === 0) return `tls ${addr} pending ${++pendingSockets}`;
    return `tls ${addr} ${JSON.stringify([d.certificates.map((c) => [c.cert, c.key]), d.alpn])}`;
  }

  /**
   * LDS update keeping the address: takes over the listening socket of `prev` (the version this one
   * replaces) instead of binding a second one. From the next accept on, new connections run through this
   * listener's filter chains; those `prev` accepted stay with it and drain. Nothing is bound or closed, so
   * connections queued in the socket's accept queue are not lost. False (nothing changed) when the sockets
   * differ: another address, plain TCP versus a direct TLS socket, or a direct TLS socket whose certificates
   * or ALPN change (they are fixed in a `Deno.listenTls` socket): the caller then binds a new socket with
   * `start` and `prev` closes its own when it drains. Inspected TLS (plain TCP socket, TLS terminated per
   * chain behind it) keeps the socket whatever the TLS contexts become.
   */
  takeOver(prev: Listener): boolean {
    const sock = prev.#socket;
    if (sock === undefined || sock.listener === undefined || this.#socket !== undefined) return false;
    if (sock.key !== this.#socketKey()) return false;
    prev.#unwatchRotation();
    prev.#socket = undefined;
    sock.owner = (conn) => this.#handle(conn);
    this.#socket = sock;
    this.#watchRotation();
    return true;
  }

  /** A direct TLS socket is rebound when its certificates rotate. */
  #watchRotation(): void {
    const direct = this.#direct;
    if (direct === undefined) return;
    this.#unsubscribe = direct.onRotate(() => {
      this.#rebind(direct).catch((e) =>
        log.error(`Listener ${this.spec.name} could not rebind after certificate rotation: ${e.message}`)
      );
    });
  }

  #unwatchRotation(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #listenTls(tls: DownstreamTls, port: number, reusePort: boolean): Deno.Listener {
    return Deno.listenTls({ hostname: this.spec.hostname, port, reusePort, ...tls.listenOptions() });
  }

  /** A TLS listener's certificates changed: bind a new socket serving them, then retire the old one. */
  async #rebind(tls: DownstreamTls): Promise<void> {
    const sock = this.#socket;
    const old = sock?.listener;
    if (sock === undefined || old === undefined) return;
    const port = this.port;
    let next: Deno.Listener | undefined;
    if (sock.reusePort) {
      next = this.#listenTls(tls, port, true);
      old.close();
    } else {
      old.close();
      // the old socket is released once its pending accept has been cancelled
      for (let i = 0; i < 50 && next === undefined; i++) {
        await new Promise((r) => setTimeout(r, i === 0 ? 0 : 10));
        if (this.#socket !== sock || sock.listener !== old) return; // stopped or handed over meanwhile
        try {
          next = this.#listenTls(tls, port, false);
        } catch (e) {
          if (!(e instanceof Deno.errors.AddrInUse)) throw e;
        }
      }
      if (next === undefined) throw new Error(`Port ${port} stayed busy`);
    }
    sock.listener = next;
    sock.key = this.#socketKey();
    const prev = sock.accepting;
    const loop = this.#acceptLoop(sock, next);
    sock.accepting = Promise.all([prev, loop]).then(() => {});
    log.info(`Listener ${this.spec.name} serves the reloaded certificates`);
  }

  /** Accepts until `l` is closed; each connection goes to the socket's owner at the time it is accepted. */
  async #acceptLoop(sock: ListenSocket, l: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
        // EMFILE and friends: back off briefly instead of spinning
        log.warn(`Accept failed on ${this.spec.name}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      sock.owner(conn);
    }
  }

  /** Runs the listener filters (original_dst, proxy_protocol), then hands off or dispatches. */
  #handle(conn: Deno.Conn, handedOff = false): void {
    if (!handedOff) {
      try {
        (conn as Deno.TcpConn).setNoDelay?.(true);
      } catch {
        // the peer may already be gone
      }
    }
    // SO_ORIGINAL_DST is read from the socket itself, before a PROXY header is consumed
    const od = this.spec.originalDst;
    let dst = od === undefined ? undefined : originalDst(conn);
    if (dst !== undefined && od === "first") {
      conn = new PrefixedConn(conn, EMPTY, undefined, dst).asConn();
      dst = undefined;
    }
    const pp = this.spec.proxyProtocol;
    if (pp !== undefined) {
      this.#accepts++;
      pp.accept(conn, this.spec.inspectTimeoutMs ?? 15_000).then((c) => {
        if (c !== null) {
          this.#filtered(
            dst === undefined ? c : new PrefixedConn(c, EMPTY, undefined, dst).asConn(),
            handedOff,
          );
        }
        this.#accepts--;
        this.#idleCheck();
      });
      return;
    }
    this.#filtered(
      dst === undefined ? conn : new PrefixedConn(conn, EMPTY, undefined, dst).asConn(),
      handedOff,
    );
  }

  /**
   * After the listener filters: use_original_dst hands a connection whose local address was restored to the
   * listener of that address (which runs its own listener filters; Envoy's hand-off), else it is dispatched here.
   */
  #filtered(conn: Deno.Conn, handedOff: boolean): void {
    const handOff = this.spec.handOff;
    if (handOff !== undefined && !handedOff && isLocalRestored(conn)) {
      const to = handOff(conn.localAddr as Deno.NetAddr);
      if (to !== undefined && to !== this) {
        if (log.enabled("debug")) {
          log.debug(
            `connection to ${
              addrText(conn.localAddr)
            } handed off from '${this.spec.name}' to '${to.spec.name}'`,
          );
        }
        to.#handle(conn, true);
        return;
      }
    }
    this.#dispatch(conn);
  }

  /** After the listener filters: TLS inspection and handshake, or the chain right away. */
  #dispatch(conn: Deno.Conn): void {
    if (this.#tlsAccept !== undefined) {
      this.#accepts++;
      this.#tlsAccept.handle(conn, this.#direct !== undefined).finally(() => {
        this.#accepts--;
        this.#idleCheck();
      });
      return;
    }
    let chain = this.#chains[0];
    let reason: string | undefined;
    if (this.#chains.length > 1) {
      const facts = {
        port: (conn.localAddr as Deno.NetAddr).port,
        sni: "",
        transport: "raw_buffer",
        alpn: [],
      };
      const i = this.#selector.select(facts);
      if (i >= 0 && log.enabled("debug")) reason = explainChain(this.#chains[i].match, facts);
      if (i < 0) {
        this.spec.scope.counter("no_filter_chain_match").inc();
        try {
          conn.close();
        } catch {
          // gone
        }
        return;
      }
      chain = this.#chains[i];
    }
    this.#start(conn, chain, reason === undefined ? undefined : { chainReason: reason });
  }

  #start(
    conn: Deno.Conn,
    chain: FilterChainSpec,
    opts: ConstructorParameters<typeof ActiveConnection>[3],
  ): void {
    // a plain accepted socket is kept by its resource id only (network/slim_conn.ts): ~0.9 KiB less per connection
    const c = new ActiveConnection(
      this.idBase + ++nextConnectionId,
      slimTcpConn(conn),
      this.spec.bufferLimitBytes,
      opts,
    );
    if (log.enabled("debug")) {
      const tls = c.tls ? `, TLS sni '${c.tls.sni}' alpn '${c.tls.alpn}' ${c.tls.version}` : "";
      log.debug(
        `[C${c.id}] new connection from ${c.remoteAddress} on listener '${this.spec.name}'${tls}; ` +
          `filter chain '${chain.name}' chosen: ${opts?.chainReason ?? "the listener's only chain"}`,
      );
    }
    this.#connections.add(c);
    this.#stats.downstream_cx_total.inc();
    this.#stats.downstream_cx_active.inc();
    this.#run(c, chain.filters, this.clock.monotonic());
  }

  /**
   * Builds the connection's filter chain and runs its terminal filter. The common chain (no filter waits in
   * onNewConnection) is built synchronously and the terminal's promise is followed with callbacks, so a
   * connection holds no suspended async function of the listener while it lives.
   */
  #run(c: ActiveConnection, filters: NetworkFilterFactory[], start: number): void {
    const observers: ReadFilter[] = [];
    let waitAt: number;
    try {
      waitAt = this.#build(c, filters, 0, observers);
    } catch (err) {
      this.#failed(c, err);
      return this.#ended(c, observers, start);
    }
    if (waitAt < 0) this.#runTerminal(c, observers, start);
    else void this.#runAfterNewConnection(c, filters, waitAt, observers, start);
  }

  /**
   * Creates the filters of `filters` from `from` on, up to and including the terminal one (which becomes
   * `c.terminal`); returns the index of a read filter whose onNewConnection must run first, or -1.
   */
  #build(
    c: ActiveConnection,
    filters: NetworkFilterFactory[],
    from: number,
    observers: ReadFilter[],
  ): number {
    for (let i = from; i < filters.length; i++) {
      const f = filters[i].createFilter(c);
      if (filters[i].terminal) {
        c.terminal = f as TerminalFilter;
        if (this.#draining) c.drain(this.#keepIdle);
        return -1;
      }
      const rf = f as ReadFilter;
      observers.push(rf);
      if (rf.onNewConnection) return i;
    }
    return -1;
  }

  /** A chain with read filters that act on a new connection: each is awaited in order, then the rest built. */
  async #runAfterNewConnection(
    c: ActiveConnection,
    filters: NetworkFilterFactory[],
    at: number,
    observers: ReadFilter[],
    start: number,
  ): Promise<void> {
    try {
      for (let i = at; i >= 0; i = this.#build(c, filters, i + 1, observers)) {
        if (await observers[observers.length - 1].onNewConnection!(c) === FilterStatus.StopIteration) {
          return this.#ended(c, observers, start);
        }
      }
    } catch (err) {
      this.#failed(c, err);
      return this.#ended(c, observers, start);
    }
    this.#runTerminal(c, observers, start);
  }

  #runTerminal(c: ActiveConnection, observers: ReadFilter[], start: number): void {
    if (observers.some((o) => o.onData || o.onWrite)) {
      c.observers = observers;
      c.observed = true;
    }
    const terminal = c.terminal;
    if (terminal === null || c.closed) return this.#ended(c, observers, start);
    if (terminal.start !== undefined) {
      // no promise or callback per connection: the terminal tells #connectionEnd, which finds these on `c`
      c.endObservers = observers.length === 0 ? NO_OBSERVERS : observers;
      c.startedAt = start;
      try {
        terminal.start(c, this.#connectionEnd);
      } catch (err) {
        this.#failed(c, err);
        this.#ended(c, observers, start);
      }
      return;
    }
    let running: Promise<void>;
    try {
      running = terminal.run(c);
    } catch (err) {
      this.#failed(c, err);
      return this.#ended(c, observers, start);
    }
    running.then(() => this.#ended(c, observers, start), (err) => {
      this.#failed(c, err);
      this.#ended(c, observers, start);
    });
  }

  /** Told by a terminal filter run with `start` that its connection is done. */
  readonly #connectionEnd: ConnectionEnd = {
    connectionEnded: (conn: DownstreamConnection, err?: unknown): void => {
      const c = conn as ActiveConnection;
      if (err !== undefined) this.#failed(c, err);
      this.#ended(c, c.endObservers, c.startedAt);
    },
  };

  #failed(c: ActiveConnection, err: unknown): void {
    log.error(`Connection ${c.id} on ${this.spec.name} failed: ${(err as Error).stack ?? err}`);
  }

  /** The connection ended: close it, tell its read filters, count it. */
  #ended(c: ActiveConnection, observers: ReadFilter[], start: number): void {
    c.close();
    for (const o of observers) {
      try {
        o.onClose?.();
      } catch (err) {
        log.error(`onClose failed: ${(err as Error).message}`);
      }
    }
    this.#connections.delete(c);
    this.#stats.downstream_cx_active.dec();
    this.#stats.downstream_cx_destroy.inc();
    this.#stats.downstream_cx_length_ms.record(this.clock.monotonic() - start);
    this.#idleCheck();
  }

  /** A draining listener whose last connection (or pending TLS accept) ended stops waiting. */
  #idleCheck(): void {
    if (this.#draining && this.#connections.size === 0 && this.#accepts === 0) this.#idle?.();
  }

  /** Stops accepting new connections (existing ones go on). */
  stopAccepting(): void {
    this.#unwatchRotation();
    const sock = this.#socket;
    if (sock === undefined) return; // never bound, already stopped, or handed over (`takeOver`)
    this.#socket = undefined;
    this.#closedLoops = sock.accepting;
    try {
      sock.listener?.close();
    } catch {
      // already closed
    }
    sock.listener = undefined;
  }

  /**
   * Resolves once the sockets this listener bound are released. After `stopAccepting` the port stays bound
   * until the pending accept has been cancelled (the next turn of the event loop); this waits for that. A
   * socket handed to a newer version (`takeOver`) is no longer this listener's: resolved at once.
   */
  released(): Promise<void> {
    return this.#socket?.accepting ?? this.#closedLoops ?? Promise.resolve();
  }

  /**
   * Tells every connection (and each one accepted from now on) to drain, at moments spread over `spreadMs`,
   * while the listener keeps accepting (admin /drain_listeners?graceful).
   */
  discourage(spreadMs: number): void {
    this.#draining = true;
    this.#tellDrain(spreadMs, spreadMs);
  }

  #spread: ReturnType<typeof setTimeout>[] = [];

  #tellDrain(spreadMs: number, windowMs: number): void {
    const keepIdle = this.#keepIdle;
    for (const c of this.#connections) {
      if (spreadMs <= 0) c.drain(keepIdle);
      else {
        const at = Math.random() * Math.min(spreadMs, windowMs);
        this.#spread.push(setTimeout(() => this.#connections.has(c) && c.drain(keepIdle), at));
      }
    }
  }

  /**
   * Stops accepting and waits up to `graceMs` for open connections to finish, then closes the rest. `keepIdle`
   * (LDS updates) leaves idle HTTP/1.1 keep-alive connections open until their next response or the end.
   * `spreadMs` (--drain-strategy gradual) tells each connection to drain at a random moment of that window
   * instead of all at once, so clients reconnect over it rather than in one burst.
   */
  async drainAndClose(graceMs: number, keepIdle = false, spreadMs = 0): Promise<void> {
    this.stopAccepting();
    await this.released();
    // a socket accepted before the drain still in its TLS handshake becomes a connection and drains with them
    if ((this.#connections.size > 0 || this.#accepts > 0) && graceMs > 0) {
      this.#draining = true;
      this.#keepIdle = keepIdle;
      this.#tellDrain(spreadMs, graceMs);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        // a second drain (shutdown while a replaced listener drains) ends the first one's wait too
        const prev = this.#idle;
        this.#idle = prev === undefined ? resolve : () => {
          prev();
          resolve();
        };
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    for (const t of this.#spread) clearTimeout(t);
    this.#spread = [];
    this.#tlsAccept?.close();
    this.spec.proxyProtocol?.close();
    for (const c of this.#connections) c.close();
    // let the per-connection tasks observe the close
    for (let i = 0; i < 100 && this.#connections.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
  }
}

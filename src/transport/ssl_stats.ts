/**
 * Envoy's `ssl.*` stats of one TLS context owner: `listener.<address>.ssl.*` for downstream handshakes,
 * `cluster.<name>.ssl.*` for upstream ones. The fixed counters are declared once per scope; the per-value ones
 * (`ssl.ciphers.<c>`, `ssl.versions.<v>`, `ssl.curves.<c>`) are created on first use and cached by value.
 */
import type { Counter, Scope } from "../stats/store.ts";

/** Why a peer certificate was refused (which `fail_verify_*` counter it bumps). */
export type VerifyFailure = "no_cert" | "error" | "san" | "cert_hash";

/** What a successful handshake showed (values not observable on a path are "" / false). */
export interface HandshakeFacts {
  /** "TLSv1.2" / "TLSv1.3" ("" when not observable). */
  version: string;
  /** Cipher suite, OpenSSL name ("" when not observable). */
  cipher: string;
  /** Key exchange group ("" when not observable). */
  curve: string;
  /** The session was resumed. */
  resumed: boolean;
  /** The peer presented a certificate. */
  peerCertificate: boolean;
}

/** The ssl.* counters of one scope; one instance per listener or cluster (per event loop). */
export class SslStats {
  readonly connection_error: Counter;
  readonly handshake: Counter;
  readonly session_reused: Counter;
  readonly no_certificate: Counter;
  readonly fail_verify_no_cert: Counter;
  readonly fail_verify_error: Counter;
  readonly fail_verify_san: Counter;
  readonly fail_verify_cert_hash: Counter;
  readonly #scope: Scope;
  readonly #byValue = new Map<string, Counter>();

  constructor(scope: Scope) {
    this.#scope = scope;
    this.connection_error = scope.counter("ssl.connection_error");
    this.handshake = scope.counter("ssl.handshake");
    this.session_reused = scope.counter("ssl.session_reused");
    this.no_certificate = scope.counter("ssl.no_certificate");
    this.fail_verify_no_cert = scope.counter("ssl.fail_verify_no_cert");
    this.fail_verify_error = scope.counter("ssl.fail_verify_error");
    this.fail_verify_san = scope.counter("ssl.fail_verify_san");
    this.fail_verify_cert_hash = scope.counter("ssl.fail_verify_cert_hash");
  }

  /** Counts a completed handshake as Envoy's logHandshake does. */
  handshakeDone(f: HandshakeFacts): void {
    this.handshake.inc();
    if (f.resumed) this.session_reused.inc();
    if (f.cipher !== "") this.#value("ssl.ciphers.", f.cipher);
    if (f.version !== "") this.#value("ssl.versions.", f.version);
    if (f.curve !== "") this.#value("ssl.curves.", f.curve);
    if (!f.peerCertificate) this.no_certificate.inc();
  }

  /** Counts a refused peer certificate. */
  verifyFailed(why: VerifyFailure): void {
    switch (why) {
      case "no_cert":
        this.fail_verify_no_cert.inc();
        return;
      case "error":
        this.fail_verify_error.inc();
        return;
      case "san":
        this.fail_verify_san.inc();
        return;
      default:
        this.fail_verify_cert_hash.inc();
    }
  }

  #value(prefix: string, v: string): void {
    const key = prefix + v;
    let c = this.#byValue.get(key);
    if (c === undefined) {
      c = this.#scope.counter(key);
      this.#byValue.set(key, c);
    }
    c.inc();
  }
}

const perScope = new WeakMap<Scope, SslStats>();

/** The SslStats of `scope`, shared by every context using that scope (e.g. a listener's filter chains). */
export function sslStatsFor(scope: Scope): SslStats {
  let s = perScope.get(scope);
  if (s === undefined) {
    s = new SslStats(scope);
    perScope.set(scope, s);
  }
  return s;
}

/** Contracts of access logging: what the connection manager and tcp_proxy call at the end of a stream. */
import type { StreamInfo } from "../common/stream_info.ts";
import type { FactoryContext } from "../network/filter.ts";

/** One configured access log sink (built once per config snapshot). */
export interface AccessLogger {
  /** Formats and queues one entry; never blocks and never throws. */
  log(info: StreamInfo): void;
  /** Flushes what is queued and releases the sink. */
  close(): Promise<void>;
  /** Reopens the destination file at the next write (admin `/reopen_logs`); absent for streams. */
  reopen?(): void;
  /**
   * True when entries print SNI or TLS version/cipher/session id: the listener then reads the ClientHello
   * of its TLS connections (absent: false).
   */
  readonly usesTlsFacts?: boolean;
}

/** What an access logger is built with: a listener's FactoryContext, or the admin server's stats and clock. */
export type AccessLoggerContext = Pick<FactoryContext, "stats" | "clock">;

/** The `create` signature of access logger extensions (category "access_logger"). */
export type AccessLoggerCreate<C> = (config: C, ctx: AccessLoggerContext) => AccessLogger;

/**
 * The response of an HTTP/2 attempt on its way downstream: the codec delivers head, body and trailers
 * synchronously while `cb.encode*` are asynchronous, so they queue here and one pump forwards them in order.
 * Body bytes are acknowledged to the upstream (WINDOW_UPDATE) only once written downstream.
 */
import type { HttpFilterCallbacks } from "../../../../http/filter.ts";
import type { H2Stream } from "../../../../http/h2/stream.ts";
import type { HeaderMap } from "../../../../http/headers.ts";

const EMPTY = new Uint8Array(0);
const ignore = () => {};

/** What the queue needs from its attempt. */
export interface ResponseSource {
  readonly owner: { readonly cb: HttpFilterCallbacks };
  /** The attempt ended (aborted or failed): stop forwarding. */
  readonly finished: boolean;
  /** The upstream stream (for flow-control acknowledgements), null once closed. */
  readonly stream: H2Stream | null;
  /** Everything went downstream. */
  complete(): void;
}

/** One attempt's response, forwarded in order. */
export class H2ResponseQueue {
  /** Body chunks (copies) not yet written downstream. */
  readonly chunks: Uint8Array[] = [];
  /** Response trailers, once received. */
  trailers: HeaderMap | null = null;
  /** The upstream ended the response. */
  remoteEnded = false;
  #head: HeaderMap | null;
  #endSent = false;
  #pumping = false;

  /** Queues the head (`headEnd`: a headers-only response). */
  constructor(
    readonly src: ResponseSource,
    readonly status: number,
    head: HeaderMap,
    readonly headEnd: boolean,
  ) {
    this.#head = head;
  }

  /** Starts the pump unless it runs. */
  kick(): void {
    if (!this.#pumping) this.#pump().catch(ignore);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    const src = this.src;
    const cb = src.owner.cb;
    try {
      const head = this.#head;
      if (head !== null) {
        this.#head = null;
        if (this.headEnd) this.#endSent = true;
        await cb.encodeHeaders({ status: this.status, headers: head }, this.headEnd);
        if (!this.headEnd && this.chunks.length === 0 && !this.remoteEnded && !src.finished) {
          await cb.encodeData(EMPTY, false); // flush the head before the body arrives
        }
      }
      const chunks = this.chunks;
      while (!src.finished) {
        if (chunks.length > 0) {
          const c = chunks.shift()!;
          const last = chunks.length === 0 && this.remoteEnded && this.trailers === null;
          if (last) this.#endSent = true;
          await cb.encodeData(c, last);
          const st = src.stream;
          if (st !== null && !this.remoteEnded) st.consume(c.length);
          continue;
        }
        if (this.remoteEnded && !this.#endSent) {
          this.#endSent = true;
          if (this.trailers !== null) await cb.encodeTrailers(this.trailers);
          else await cb.encodeData(EMPTY, true);
        }
        break;
      }
    } catch {
      // the downstream went away: the router's onDestroy aborts the attempt
    } finally {
      this.#pumping = false;
    }
    if (this.#endSent && !src.finished) src.complete();
  }
}

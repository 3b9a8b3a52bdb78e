/**
 * The response of an HTTP/2 attempt on its way downstream: the codec delivers head, body and trailers
 * synchronously while `cb.encode*` are asynchronous, so they queue here and one pump forwards them in order.
 * Body bytes are acknowledged to the upstream (WINDOW_UPDATE) only once written downstream.
 */
import { DONE, type HttpFilterCallbacks } from "../../../../http/filter.ts";
import type { H2Stream } from "../../../../http/h2/stream.ts";
import type { HeaderMap } from "../../../../http/headers.ts";

const EMPTY = new Uint8Array(0);

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
  /** The head went out and the step after it has not run yet. */
  #afterHead = false;
  /** Length of the chunk whose write is awaited. */
  #written = 0;

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
    if (this.#pumping) return;
    this.#pumping = true;
    this.#step();
  }

  /**
   * The pump: forwards what is queued, in order, without an async frame. The head goes first, and what follows
   * it runs a microtask later, once the codec is through the read that brought the head (the body and trailers
   * in that read are queued by then, and a stream the read ended is closed). An encode call that has to wait
   * (flow control, a busy socket) stops the pump until it settles; one that returns DONE does not.
   */
  readonly #step = (): void => {
    const src = this.src;
    const cb = src.owner.cb;
    try {
      const head = this.#head;
      if (head !== null) {
        this.#head = null;
        if (this.headEnd) this.#endSent = true;
        this.#afterHead = true;
        const p = cb.encodeHeaders({ status: this.status, headers: head }, this.headEnd);
        if (p === DONE) queueMicrotask(this.#step);
        else p.then(this.#step, this.#stop);
        return;
      }
      const chunks = this.chunks;
      if (this.#afterHead) {
        this.#afterHead = false;
        if (!this.headEnd && chunks.length === 0 && !this.remoteEnded && !src.finished) {
          const p = cb.encodeData(EMPTY, false); // flush the head before the body arrives
          if (p !== DONE) return void p.then(this.#step, this.#stop);
        }
      }
      while (!src.finished) {
        if (chunks.length > 0) {
          const c = chunks.shift()!;
          const last = chunks.length === 0 && this.remoteEnded && this.trailers === null;
          if (last) this.#endSent = true;
          const p = cb.encodeData(c, last);
          if (p !== DONE) {
            this.#written = c.length;
            return void p.then(this.#chunkWritten, this.#stop);
          }
          this.#acknowledge(c.length);
          continue;
        }
        if (this.remoteEnded && !this.#endSent) {
          this.#endSent = true;
          const p = this.trailers !== null ? cb.encodeTrailers(this.trailers) : cb.encodeData(EMPTY, true);
          if (p !== DONE) return void p.then(this.#stop, this.#stop);
        }
        break;
      }
    } catch {
      // the downstream went away: the router's onDestroy aborts the attempt
    }
    this.#stop();
  };

  /** A chunk that had to wait went downstream: acknowledge it upstream, go on. */
  readonly #chunkWritten = (): void => {
    this.#acknowledge(this.#written);
    this.#step();
  };

  /** Bytes written downstream are returned to the upstream's flow-control window. */
  #acknowledge(n: number): void {
    const st = this.src.stream;
    if (st !== null && !this.remoteEnded) st.consume(n);
  }

  /** The pump stops (nothing queued, the attempt finished, or the downstream went away). */
  readonly #stop = (): void => {
    this.#pumping = false;
    const src = this.src;
    if (this.#endSent && !src.finished) src.complete();
  };
}

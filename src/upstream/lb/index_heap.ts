/**
 * A binary min-heap of host indices ordered by a subclass's `before` (earliest deadline first): the scheduler
 * behind weighted ROUND_ROBIN and weighted LEAST_REQUEST.
 */

/** Host indices [0, n) in heap order; `heap[0]` is the next host to pick. */
export abstract class IndexHeap {
  protected readonly heap: Uint32Array;

  /** A heap over `n` host indices (call `heapify` once the keys are set). */
  constructor(n: number) {
    this.heap = new Uint32Array(n);
  }

  /** True when host `a` comes before host `b` (ties must break by index for a stable order). */
  protected abstract before(a: number, b: number): boolean;

  /** Puts every index back and restores heap order. */
  protected heapify(): void {
    const heap = this.heap;
    const n = heap.length;
    for (let i = 0; i < n; i++) heap[i] = i;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** Moves the entry at `i` down to its place (after its key grew). */
  protected siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const x = heap[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.before(heap[c + 1], heap[c])) c++;
      if (!this.before(heap[c], x)) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = x;
  }
}

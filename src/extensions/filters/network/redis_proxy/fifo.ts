/** A FIFO queue on a growable ring (no per-operation allocation once warm). */
export class Fifo<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #size = 0;

  /** Number of queued items. */
  get size(): number {
    return this.#size;
  }

  /** Appends an item. */
  push(v: T): void {
    const items = this.#items;
    if (this.#size === items.length) {
      const bigger: (T | undefined)[] = new Array(items.length * 2);
      for (let i = 0; i < this.#size; i++) bigger[i] = items[(this.#head + i) & (items.length - 1)];
      this.#items = bigger;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = v;
    this.#size++;
  }

  /** The oldest item, or undefined. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns the oldest item, or undefined. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const v = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    return v;
  }
}

/**
 * default_filter_chain: a chain selector that answers the default chain's index (the last chain, after the
 * matched ones) where Envoy's selection finds no chain, instead of closing the connection.
 */
import { type ChainMatch, ChainSelector, type ConnectionFacts } from "../transport/chain_select.ts";

/** Selects among `matches`; `matches.length` (the default chain, placed after them) when none matches. */
export class DefaultingSelector extends ChainSelector {
  readonly #fallback: number;

  constructor(matches: readonly ChainMatch[]) {
    super(matches);
    this.#fallback = matches.length;
  }

  /** The matching chain's index, else the default chain's. */
  override select(f: ConnectionFacts): number {
    const i = super.select(f);
    return i >= 0 ? i : this.#fallback;
  }
}

/**
 * HPACK Huffman coding (RFC 7541 §5.2, Appendix B). The code is canonical, so the table is stored as the
 * bit length of each of the 257 symbols (0-255 and EOS) and the codes are derived at module load.
 * Decoding uses a 4-bit state machine built once from the code tree: one table lookup per nibble.
 */

// Bit lengths of symbols 0..256, each as a char: length = code - 60 ("A" = 5 bits).
const LENGTHS =
  "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACC" +
  "BBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQ" +
  "VVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ";

/** Code length in bits of each symbol (index 256 is EOS). */
export const HUFFMAN_LENGTHS: Uint8Array = new Uint8Array(257);
/** Code of each symbol, right-aligned. */
export const HUFFMAN_CODES: Uint32Array = new Uint32Array(257);

{
  for (let i = 0; i < 257; i++) HUFFMAN_LENGTHS[i] = LENGTHS.charCodeAt(i) - 60;
  const order = Array.from({ length: 257 }, (_, i) => i);
  order.sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  let code = 0;
  for (let i = 0; i < 257; i++) {
    const s = order[i];
    if (i > 0) code = (code + 1) * 2 ** (HUFFMAN_LENGTHS[s] - HUFFMAN_LENGTHS[order[i - 1]]);
    HUFFMAN_CODES[s] = code;
  }
}

// Decoder state machine. Node 0 is the root; internal nodes only. For state s and nibble n the entry at
// (s * 16 + n) packs: next state (bits 0-8), emitted symbol (bits 9-16), flags (bit 17 emit, bit 18 fail).
// ACCEPT[s] is 1 when ending in state s is valid padding (fewer than 8 bits, all ones).
const EMIT = 1 << 17;
const FAIL = 1 << 18;
const FSM = new Uint32Array(256 * 16);
const ACCEPT = new Uint8Array(256);

{
  // Build the code tree: children[node*2 + bit] = child node (>0) or -(symbol + 1) for a leaf.
  const children = new Int32Array(512 * 2);
  let nodes = 1;
  for (let s = 0; s < 257; s++) {
    const len = HUFFMAN_LENGTHS[s];
    const code = HUFFMAN_CODES[s];
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1;
      const idx = node * 2 + bit;
      if (b === 0) children[idx] = -(s + 1);
      else {
        if (children[idx] === 0) children[idx] = nodes++;
        node = children[idx];
      }
    }
  }
  // Accepting states: reached from the root by 0..7 one-bits.
  let n = 0;
  ACCEPT[0] = 1;
  for (let d = 1; d < 8; d++) {
    n = children[n * 2 + 1];
    ACCEPT[n] = 1;
  }
  for (let s = 0; s < nodes; s++) {
    for (let nib = 0; nib < 16; nib++) {
      let node = s;
      let out = 0;
      for (let b = 3; b >= 0; b--) {
        const c = children[node * 2 + ((nib >> b) & 1)];
        if (c < 0) {
          const sym = -c - 1;
          if (sym === 256) {
            out = FAIL;
            break;
          }
          out |= EMIT | (sym << 9);
          node = 0;
        } else node = c;
      }
      FSM[s * 16 + nib] = out & FAIL ? FAIL : out | node;
    }
  }
}

/**
 * Decodes Huffman bytes [start, end) of `src` into `dst` from offset 0; returns the number of bytes written,
 * or -1 on an invalid code (EOS inside the string or bad padding). `dst` must hold `(end - start) * 8 / 5` bytes.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let state = 0;
  let o = 0;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let e = FSM[state * 16 + (b >> 4)];
    if (e & FAIL) return -1;
    if (e & EMIT) dst[o++] = (e >> 9) & 0xff;
    state = e & 0x1ff;
    e = FSM[state * 16 + (b & 15)];
    if (e & FAIL) return -1;
    if (e & EMIT) dst[o++] = (e >> 9) & 0xff;
    state = e & 0x1ff;
  }
  return ACCEPT[state] ? o : -1;
}

/** Bytes the Huffman encoding of `s` (char codes taken as bytes) would take. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff];
  return (bits + 7) >> 3;
}

/** Huffman-encodes `s` into `dst` at `pos`; returns the end offset. Callers size `dst` with huffmanLength. */
export function huffmanEncode(s: string, dst: Uint8Array, pos: number): number {
  let acc = 0;
  let nbits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = HUFFMAN_CODES[sym];
    let len = HUFFMAN_LENGTHS[sym];
    if (len > 24) {
      // emit the high bits first so the accumulator never passes 31 bits
      acc = (acc << (len - 16)) | (code >>> 16);
      nbits += len - 16;
      while (nbits >= 8) {
        nbits -= 8;
        dst[pos++] = (acc >>> nbits) & 0xff;
      }
      code &= 0xffff;
      len = 16;
    }
    acc = ((acc & 0x7f) << len) | code;
    nbits += len;
    while (nbits >= 8) {
      nbits -= 8;
      dst[pos++] = (acc >>> nbits) & 0xff;
    }
  }
  if (nbits > 0) dst[pos++] = ((acc << (8 - nbits)) | (0xff >> nbits)) & 0xff;
  return pos;
}

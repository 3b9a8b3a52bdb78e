/** Maps a field path to the line and column of its node in a parsed YAML/JSON document. */
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type Pair } from "yaml";
import type { PathSegment } from "./errors.ts";

/** Where a path points: 1-based line/column, and whether the whole path was found. */
export interface Located {
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
  /** False when the leaf (or a parent) is absent and the position is that of the nearest parent. */
  found: boolean;
}

/**
 * Runs at load time for each error: walks `doc` along `path`; `at: "key"` points at the key of a map entry,
 * as does a field whose value is a block mapping or sequence (its key's line, not the first line below).
 */
export function locate(
  doc: Document,
  lines: LineCounter,
  path: readonly PathSegment[],
  at: "key" | "value" = "value",
): Located {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    node = resolve(doc, node);
    const seg = path[i];
    let next: unknown = undefined;
    let keyOffset: number | undefined;
    if (isMap(node)) {
      const pair = findPair(doc, node.items as Pair[], seg);
      if (pair) {
        keyOffset = rangeStart(pair.key);
        next = pair.value;
        if (isEmptyScalar(next)) next = undefined;
        if (next === undefined && i === path.length - 1 && keyOffset !== undefined) {
          // `key:` with no value: point at the key
          return { ...toLineCol(lines, keyOffset), found: true };
        }
        if (
          i === path.length - 1 && keyOffset !== undefined && (at === "key" || isBlock(resolve(doc, next)))
        ) {
          // a block mapping or sequence starts on the lines below its key: the key is where the field is
          return { ...toLineCol(lines, keyOffset), found: true };
        }
      }
    } else if (isSeq(node) && typeof seg === "number") {
      next = node.items[seg];
    }
    const start = rangeStart(next);
    if (next === undefined || next === null || start === undefined) {
      return { ...toLineCol(lines, offset), found: false };
    }
    node = next;
    offset = start;
  }
  return { ...toLineCol(lines, offset), found: true };
}

/** Converts a 0-based offset into 1-based line and column. */
export function toLineCol(lines: LineCounter, offset: number): { line: number; column: number } {
  const p = lines.linePos(offset);
  return { line: p.line, column: p.col };
}

/** Converts a 0-based offset into 1-based line and column by scanning `text` (for errors before parsing). */
export function offsetToLineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

function resolve(doc: Document, node: unknown): unknown {
  for (let i = 0; i < 100 && isAlias(node); i++) node = node.resolve(doc);
  return node;
}

function findPair(doc: Document, items: Pair[], seg: PathSegment): Pair | undefined {
  const want = String(seg);
  // the last occurrence wins (duplicate keys are reported separately)
  for (let i = items.length - 1; i >= 0; i--) {
    const key = resolve(doc, items[i].key);
    if (isScalar(key) && String(key.value) === want) return items[i];
  }
  return undefined;
}

function isBlock(node: unknown): boolean {
  return (isMap(node) || isSeq(node)) && !node.flow;
}

function isEmptyScalar(node: unknown): boolean {
  if (!isScalar(node) || node.value !== null || !node.range) return false;
  return node.range[0] === node.range[1];
}

function rangeStart(node: unknown): number | undefined {
  if (!node || typeof node !== "object") return undefined;
  const range = (node as Node).range;
  return range ? range[0] : undefined;
}

/**
 * Gives the pages of start-up code back to the page cache once a process serves.
 *
 * Most of the executable's code that a proxy ever runs, it runs once: Deno's module loader, TypeScript
 * transpilation, npm resolution, its caches, V8's parser for 400 modules, nuncio's config loading. Those pages
 * stay mapped into the process, and so counted in its RSS, for as long as it lives: about 30 of the ~42 MB of
 * file-backed pages an idle nuncio held (measured 2026-12-07, `deno run`, bench config). After start-up
 * `releaseStartupPages()` unmaps the process's clean file pages from its page tables (`madvise(MADV_DONTNEED)`
 * on read-only file mappings that hold no private page): the pages stay in the page cache, where the kernel
 * reclaims them when it needs memory, and what the process touches again (the data path: ~10 MB after a wrk
 * burst) comes back as minor faults, without a disk read. `MADV_PAGEOUT` would skip every page another process
 * maps too (the same binary serving another role, a hot-restart parent, `deno` itself under `deno run`).
 * Writable mappings, and read-only ones holding copied-on-write pages (relocations), are never touched, so no
 * byte of the process's own changes can be lost. Where the call is not available (another OS, no FFI
 * permission) nothing happens. /proc/self/smaps is read through libc as well: Deno opens /proc files only
 * with --allow-all, and nuncio runs with named permissions.
 */

import { type Libc, libc } from "./libc.ts";

/** madvise(2): drop these pages from the page tables; file pages are read again from the page cache. */
const MADV_DONTNEED = 4;

/** A mapping of /proc/self/smaps worth releasing: [start, end) addresses. */
export interface Mapping {
  start: bigint;
  end: bigint;
  path: string;
}

/** The fields of an smaps entry that say it holds a page of the process's own. */
const PRIVATE_FIELDS = /^(?:Anonymous|Swap|Private_Dirty|Shared_Dirty):\s+(\d+) kB$/;
const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$/;

/**
 * The mappings of `/proc/<pid>/smaps` text whose resident pages are all clean file pages: backed by a file
 * (not anonymous, not a [heap]/[stack]-style pseudo path, not deleted), not writable, and with no anonymous,
 * swapped or dirty page (a read-only private mapping can hold copied-on-write pages: relocated data).
 */
export function releasableMappings(smaps: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | null = null;
  for (const line of smaps.split("\n")) {
    const h = HEADER.exec(line);
    if (h !== null) {
      if (cur !== null) out.push(cur);
      const [, from, to, perms, path] = h;
      cur = perms[1] !== "w" && path.startsWith("/") && !path.endsWith(" (deleted)")
        ? { start: BigInt("0x" + from), end: BigInt("0x" + to), path }
        : null;
      continue;
    }
    const f = PRIVATE_FIELDS.exec(line);
    if (f !== null && f[1] !== "0") cur = null;
  }
  if (cur !== null) out.push(cur);
  return out;
}

/**
 * Reads a whole /proc file through libc: Deno allows /proc only with --allow-all, while this runs wherever
 * --allow-ffi was granted (which gives the same access). Null when it cannot be opened.
 */
function readProcFile(l: Libc, path: string): string | null {
  const fd = l.open(new TextEncoder().encode(path + "\0"), 0 /* O_RDONLY */);
  if (fd < 0) return null;
  try {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(256 * 1024);
      const n = Number(l.read(fd, buf, BigInt(buf.length)));
      if (n <= 0) break;
      parts.push(buf.subarray(0, n));
      total += n;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return new TextDecoder().decode(all);
  } finally {
    l.close(fd);
  }
}

/** This process's /proc/self/`name` (read through libc, see readProcFile); null where unavailable. */
export function readOwnProcFile(name: string): string | null {
  const l = libc();
  return l === null ? null : readProcFile(l, `/proc/self/${name}`);
}

/**
 * Releases the process's clean file pages (see the module comment). Returns the bytes of address space
 * advised, or -1 when the call is not available here. Never throws.
 */
export function releaseStartupPages(): number {
  const l = libc();
  if (l === null) return -1;
  try {
    const smaps = readProcFile(l, "/proc/self/smaps");
    if (smaps === null) return -1;
    let advised = 0;
    for (const m of releasableMappings(smaps)) {
      const len = m.end - m.start;
      if (l.madvise(Deno.UnsafePointer.create(m.start), len, MADV_DONTNEED) === 0) advised += Number(len);
    }
    return advised;
  } catch {
    return -1;
  }
}

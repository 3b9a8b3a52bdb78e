/**
 * Load-time checks of the files a config names (certificates, access logs, event logs): they report what
 * serving would fail on, as messages for a positioned config error, and never create or change a file.
 */

/** Turns a Deno file-system error into a short reason, e.g. "No such file or directory". */
export function fileErrorReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "No such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "Is a directory";
  const msg = e instanceof Error ? e.message : String(e);
  // "Not a directory (os error 20): readfile '/a/b'" -> "Not a directory"
  return msg.replace(/ \(os error \d+\).*$/s, "");
}

/** Runs at load time: returns why `path` cannot be read as a file, or undefined when it can. */
export function checkReadableFile(path: string): string | undefined {
  try {
    const f = Deno.openSync(path, { read: true });
    try {
      if (f.statSync().isDirectory) return `Cannot read file "${path}": Is a directory`;
    } finally {
      f.close();
    }
  } catch (e) {
    return `Cannot read file "${path}": ${fileErrorReason(e)}`;
  }
  return undefined;
}

/** Runs at load time: returns why `path` cannot be read as a file or directory, or undefined when it can. */
export function checkReadablePath(path: string): string | undefined {
  try {
    Deno.openSync(path, { read: true }).close();
  } catch (e) {
    return `Cannot read "${path}": ${fileErrorReason(e)}`;
  }
  return undefined;
}

/** The paths that name the process's own standard streams (written without opening a file). */
export const STD_STREAM_PATHS: ReadonlySet<string> = new Set(["/dev/stdout", "/dev/stderr"]);

/**
 * Runs at load time: returns why a log file at `path` could not be opened for appending, or undefined. An
 * existing file is opened for appending and closed (nothing written, nothing truncated); a missing one needs
 * a writable directory (checked from its mode bits, the process's uid and groups: nothing is created).
 */
export function checkAppendableFile(path: string): string | undefined {
  if (STD_STREAM_PATHS.has(path)) return undefined;
  const cannot = (why: string) => `Cannot open file "${path}" for writing: ${why}`;
  try {
    const f = Deno.openSync(path, { append: true });
    try {
      if (f.statSync().isDirectory) return cannot("Is a directory");
    } finally {
      f.close();
    }
    return undefined;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return cannot(fileErrorReason(e));
  }
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(dir);
  } catch (e) {
    return cannot(`directory "${dir}": ${fileErrorReason(e)}`);
  }
  if (!st.isDirectory) return cannot(`"${dir}" is not a directory`);
  if (!mayWrite(st)) return cannot(`directory "${dir}": Permission denied`);
  return undefined;
}

/** Whether this process may create entries in a directory (write and search permission). */
function mayWrite(st: Deno.FileInfo): boolean {
  const uid = Deno.uid();
  if (uid === null || st.mode === null || uid === 0) return true; // no POSIX ids (Windows) or root
  const mode = st.mode;
  if (st.uid === uid) return (mode & 0o300) === 0o300;
  if (st.gid !== null && groups().has(st.gid)) return (mode & 0o030) === 0o030;
  return (mode & 0o003) === 0o003;
}

/** The process's primary and supplementary group ids (from /proc on Linux). */
function groups(): Set<number> {
  const out = new Set<number>();
  const gid = Deno.gid();
  if (gid !== null) out.add(gid);
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const line = /^Groups:(.*)$/m.exec(status)?.[1] ?? "";
    for (const g of line.trim().split(/\s+/)) if (g) out.add(Number(g));
  } catch {
    // not Linux: the primary group only
  }
  return out;
}

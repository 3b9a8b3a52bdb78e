/**
 * Child processes for benchmarks: every child runs in its own process group (so its workers die
 * with it), its output goes to a log file, and a Supervisor kills every group it started on
 * stopAll(), on SIGINT/SIGTERM and on unload.
 */

/** Options for Supervisor.spawn. */
export interface SpawnOptions {
  /** Raise the soft open-files limit to this (capped at the hard limit) before exec. */
  nofile?: number;
  /** File that receives stdout and stderr (stderr only when `pipe` is set). */
  logPath?: string;
  /** Pipe stdin and stdout to the parent instead of the log file. */
  pipe?: boolean;
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** A child started by a Supervisor. */
export interface Managed {
  /** Short name used in messages. */
  readonly name: string;
  /** Process id (also the process group id). */
  readonly pid: number;
  /** The underlying Deno child. */
  readonly child: Deno.ChildProcess;
  /** Log file, if any. */
  readonly logPath?: string;
  /** True once the process has exited. */
  exited(): boolean;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Terminates the whole process group: SIGTERM, then SIGKILL after graceMs (default 2000). */
  stop(graceMs?: number): Promise<void>;
}

const decoder = new TextDecoder();

/** Returns the last `maxBytes` of a file as text, or "" if it cannot be read. */
export function tailFile(path: string | undefined, maxBytes = 2000): string {
  if (!path) return "";
  try {
    const data = Deno.readFileSync(path);
    return decoder.decode(data.subarray(Math.max(0, data.length - maxBytes)));
  } catch {
    return "";
  }
}

function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts child processes and guarantees they are all killed when the benchmark ends. */
export class Supervisor {
  #live = new Set<Managed>();
  #exitHooks: (() => void)[] = [];
  #onSignal = () => {
    console.error("\ninterrupted: stopping child processes");
    this.stopAll().finally(() => {
      for (const hook of this.#exitHooks) hook();
      Deno.exit(130);
    });
  };
  #onUnload = () => {
    for (const m of this.#live) killGroup(m.pid, "SIGKILL");
  };

  /** Installs the SIGINT/SIGTERM and unload handlers. */
  constructor() {
    Deno.addSignalListener("SIGINT", this.#onSignal);
    Deno.addSignalListener("SIGTERM", this.#onSignal);
    globalThis.addEventListener("unload", this.#onUnload);
  }

  /** Starts `cmd args` in a new process group through bash (for ulimit and log redirection). */
  spawn(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Managed {
    const prelude = opts.nofile ? `ulimit -n ${opts.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ` : "";
    let redirect = "";
    if (opts.logPath) redirect = opts.pipe ? ' 2>>"$BENCH_LOG"' : ' >>"$BENCH_LOG" 2>&1';
    const script = `${prelude}exec "$@"${redirect}`;
    const child = new Deno.Command("bash", {
      args: ["-c", script, "bash", cmd, ...args],
      cwd: opts.cwd,
      env: { NO_COLOR: "1", ...opts.env, ...(opts.logPath ? { BENCH_LOG: opts.logPath } : {}) },
      stdin: opts.pipe ? "piped" : "null",
      stdout: opts.pipe ? "piped" : "null",
      stderr: opts.logPath ? "null" : "inherit",
      detached: true,
    }).spawn();
    let done = false;
    const status = child.status.then((s) => {
      done = true;
      this.#live.delete(managed);
      return s;
    });
    const managed: Managed = {
      name,
      pid: child.pid,
      child,
      logPath: opts.logPath,
      status,
      exited: () => done,
      stop: async (graceMs = 2000) => {
        if (done) return;
        killGroup(child.pid, "SIGTERM");
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<"timeout">((resolve) =>
          timer = setTimeout(() => resolve("timeout"), graceMs)
        );
        const first = await Promise.race([status, timeout]);
        clearTimeout(timer);
        if (first === "timeout") {
          killGroup(child.pid, "SIGKILL");
          await status;
        }
        // Kill group members that outlived the leader (e.g. nginx workers) and wait for them.
        killGroup(child.pid, "SIGKILL");
        for (let i = 0; i < 40 && groupAlive(child.pid); i++) await sleep(50);
      },
    };
    this.#live.add(managed);
    return managed;
  }

  /** Registers a synchronous clean-up (e.g. removing a temp dir) to run when interrupted. */
  onInterrupt(hook: () => void): void {
    this.#exitHooks.push(hook);
  }

  /** Returns the children that have not exited yet. */
  live(): Managed[] {
    return [...this.#live];
  }

  /** Stops every live child (in parallel, bounded by each stop's grace period). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#live].map((m) => m.stop()));
  }

  /** Stops every child and removes the signal and unload handlers. */
  async dispose(): Promise<void> {
    await this.stopAll();
    Deno.removeSignalListener("SIGINT", this.#onSignal);
    Deno.removeSignalListener("SIGTERM", this.#onSignal);
    globalThis.removeEventListener("unload", this.#onUnload);
  }
}

interface PsRow {
  pid: number;
  ppid: number;
  pgid: number;
  rssKiB: number;
  zombie: boolean;
}

/**
 * Lists every process with its parent and RSS. Uses `ps` (reading /proc needs --allow-all under
 * Deno), falling back to /proc when ps is missing.
 */
function psTable(): PsRow[] {
  try {
    const out = new Deno.Command("ps", { args: ["-e", "-o", "pid=,ppid=,pgid=,rss=,stat="], stdout: "piped" })
      .outputSync();
    if (out.success) {
      const rows: PsRow[] = [];
      for (const line of decoder.decode(out.stdout).split("\n")) {
        const f = line.trim().split(/\s+/);
        if (f.length !== 5) continue;
        const [pid, ppid, pgid, rssKiB] = f.slice(0, 4).map(Number);
        rows.push({ pid, ppid, pgid, rssKiB, zombie: f[4].startsWith("Z") });
      }
      return rows;
    }
  } catch {
    // No ps: read /proc.
  }
  const rows: PsRow[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const status = Deno.readTextFileSync(`/proc/${entry.name}/status`);
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const [ppid, pgid] = [Number(fields[1]), Number(fields[2])];
      rows.push({ pid: Number(entry.name), ppid, pgid, rssKiB, zombie: fields[0] === "Z" });
    } catch {
      // Exited meanwhile.
    }
  }
  return rows;
}

/** Reads the RSS of one process in KiB, or undefined if the process is gone. */
export function readRssKiB(pid: number): number | undefined {
  return psTable().find((r) => r.pid === pid)?.rssKiB;
}

/** True while any live (non-zombie) process belongs to process group `pgid`. */
export function groupAlive(pgid: number): boolean {
  return psTable().some((r) => r.pgid === pgid && !r.zombie);
}

function treeOf(rows: PsRow[], pid: number): PsRow[] {
  const children = new Map<number, PsRow[]>();
  for (const r of rows) {
    const list = children.get(r.ppid) ?? [];
    list.push(r);
    children.set(r.ppid, list);
  }
  const root = rows.find((r) => r.pid === pid && !r.zombie);
  if (!root) return [];
  const out: PsRow[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < rows.length) {
    const r = queue.shift()!;
    if (!r.zombie) out.push(r);
    queue.push(...(children.get(r.pid) ?? []));
  }
  return out;
}

/** Lists the pids of `pid` and all its live descendants (empty if `pid` is gone). */
export function processTree(pid: number): number[] {
  return treeOf(psTable(), pid).map((r) => r.pid);
}

/** Sums RSS in KiB over a process and its descendants (0 if it is gone). */
export function treeRssKiB(pid: number): number {
  return treeOf(psTable(), pid).reduce((n, r) => n + r.rssKiB, 0);
}

/**
 * Samples treeRssKiB every `intervalMs` until it has stayed within 1 % for `quietMs` (by default one interval:
 * two samples that agree), or maxMs passes; returns the last sample.
 */
export async function settledRssKiB(
  pid: number,
  maxMs = 5000,
  intervalMs = 500,
  quietMs = intervalMs,
): Promise<number> {
  let ref = treeRssKiB(pid);
  let stableMs = 0;
  let now = ref;
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    await sleep(intervalMs);
    now = treeRssKiB(pid);
    if (Math.abs(now - ref) <= ref * 0.01) {
      stableMs += intervalMs;
      if (stableMs >= quietMs) return now;
    } else {
      ref = now;
      stableMs = 0;
    }
  }
  return now;
}

/** What a load generator printed and how it exited. */
export interface ToolOutput {
  code: number;
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a load generator to completion, killing it if it overruns `deadlineS` (a hung peer must not hang the bench). */
export async function runTool(bin: string, args: string[], deadlineS: number): Promise<ToolOutput> {
  const child = new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).spawn();
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }, deadlineS * 1000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      success: out.success,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    clearTimeout(killer);
  }
}

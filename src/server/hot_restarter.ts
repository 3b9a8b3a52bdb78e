/**
 * `nuncio hot-restarter START_SCRIPT [ARGS...]`: the role of Envoy's restarter/hot-restarter.py, for systemd
 * and other process managers. It runs START_SCRIPT with `RESTART_EPOCH=0` in its environment (the script execs
 * `nuncio ... --restart-epoch "$RESTART_EPOCH"`); on SIGHUP it runs it again with the next epoch, which takes
 * over from the running one; SIGTERM and SIGINT are passed to every child and it exits once they have;
 * SIGUSR1 is passed on (log reopening).
 *
 * Unlike hot-restarter.py, a new epoch that fails (a bad config, a port it cannot bind) does not take the
 * running one down: it is logged, the running epoch keeps serving, and the next SIGHUP tries that epoch
 * number again. The restarter exits, with the child's code, only when no child is left.
 */
import { Logger } from "../common/log.ts";

const log = new Logger("main");

export const HOT_RESTARTER_HELP =
  `nuncio hot-restarter: runs nuncio under hot restarts (Envoy's hot-restarter.py)

Usage:
  nuncio hot-restarter START_SCRIPT [ARGS...]

START_SCRIPT runs with RESTART_EPOCH in its environment and must exec nuncio with
--restart-epoch "$RESTART_EPOCH". Signals: SIGHUP starts the next epoch (the deploy: systemctl reload);
SIGTERM/SIGINT stop every epoch and exit; SIGUSR1 is passed to every epoch.
`;

interface Child {
  epoch: number;
  proc: Deno.ChildProcess;
}

/** Runs the restarter until no child is left; resolves to the exit code. */
export async function runHotRestarter(args: string[]): Promise<number> {
  if (args.length === 0 || args[0] === "-h" || args[0] === "--help") {
    console.log(HOT_RESTARTER_HELP);
    return args.length === 0 ? 1 : 0;
  }
  const [script, ...rest] = args;
  const children = new Set<Child>();
  let nextEpoch = 0;
  let stopping = false;
  let lastCode = 0;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => done = r);

  const start = () => {
    const epoch = nextEpoch;
    let proc: Deno.ChildProcess;
    try {
      proc = new Deno.Command(script, {
        args: rest,
        env: { RESTART_EPOCH: String(epoch) },
        stdin: "null",
      }).spawn();
    } catch (e) {
      log.error(`cannot start ${script}: ${(e as Error).message}`);
      if (children.size === 0) done(1);
      return;
    }
    nextEpoch = epoch + 1;
    const child: Child = { epoch, proc };
    children.add(child);
    log.info(`started epoch ${epoch} (pid ${proc.pid})`);
    proc.status.then((s) => {
      children.delete(child);
      const how = s.signal ? `signal ${s.signal}` : `code ${s.code}`;
      if (s.code === 0 && !s.signal) log.info(`epoch ${epoch} exited`);
      else log.warn(`epoch ${epoch} exited with ${how}`);
      lastCode = s.code === 0 && !s.signal ? 0 : (s.code || 1);
      const older = [...children].filter((c) => c.epoch < epoch);
      if (!stopping && lastCode !== 0 && older.length > 0 && epoch === nextEpoch - 1) {
        // the new epoch failed before taking over: the one it was to replace keeps serving, and the next
        // SIGHUP tries this epoch number again (its predecessor still listens on its hand-over socket)
        nextEpoch = epoch;
        log.warn(`epoch ${epoch} failed; epoch ${older.at(-1)!.epoch} keeps serving`);
      }
      if (children.size === 0) done(stopping ? 0 : lastCode);
    });
  };

  const signalAll = (sig: Deno.Signal) => {
    for (const c of children) {
      try {
        c.proc.kill(sig);
      } catch {
        // already gone
      }
    }
  };
  const onHup = () => {
    if (stopping) return;
    log.info(`caught SIGHUP: starting epoch ${nextEpoch}`);
    start();
  };
  const onTerm = () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping every epoch");
    signalAll("SIGTERM");
    if (children.size === 0) done(0);
  };
  const onUsr1 = () => signalAll("SIGUSR1");
  Deno.addSignalListener("SIGHUP", onHup);
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onTerm);
  Deno.addSignalListener("SIGUSR1", onUsr1);
  try {
    start();
    return await finished;
  } finally {
    Deno.removeSignalListener("SIGHUP", onHup);
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onTerm);
    Deno.removeSignalListener("SIGUSR1", onUsr1);
  }
}

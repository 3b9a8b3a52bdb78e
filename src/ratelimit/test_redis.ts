/** Test helper: a real redis-server on a free loopback port, no persistence; stop() kills it. */

/** A running redis-server child. */
export interface TestRedis extends AsyncDisposable {
  port: number;
  url: string;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  restart(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, up: boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      if (up) return;
    } catch {
      if (!up) return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server on ${port} did not come ${up ? "up" : "down"}`);
}

/** Starts /usr/bin/redis-server on a free port (`--save "" --appendonly no`). */
export async function startRedis(port = freePort()): Promise<TestRedis> {
  let child: Deno.ChildProcess | undefined;
  const spawn = async () => {
    child = new Deno.Command("/usr/bin/redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--enable-debug-command",
        "local",
        "--loglevel",
        "warning",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port, true);
  };
  const stop = async () => {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGKILL");
    } catch {
      // already gone
    }
    await c.status;
    await waitForPort(port, false);
  };
  await spawn();
  return { port, url: `redis://127.0.0.1:${port}`, stop, restart: spawn, [Symbol.asyncDispose]: stop };
}

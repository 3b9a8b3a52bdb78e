/**
 * Helpers for the health e2e tests: a whole `Server` (in-process or with workers) plus its admin API, built
 * from YAML text written to a temp file, and polling for a condition.
 */
import "../src/registry/builtin.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { type AdminHandle, startAdmin } from "../src/server/admin_wiring.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import { Server } from "../src/server/server.ts";

/** A running server with admin. */
export interface RunningServer extends AsyncDisposable {
  server: Server;
  /** Port of the first listener. */
  port: number;
  /** GETs (or POSTs) an admin path, returns the body text. */
  admin(path: string, method?: string): Promise<string>;
  close(): Promise<void>;
}

/** The admin block for a bootstrap (127.0.0.1:0). */
export const ADMIN = { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } };

/** A free TCP port on 127.0.0.1 (for listeners shared by several workers). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** Starts `Server` from YAML (`$LOG` becomes a temp access log) with `concurrency` workers, plus admin. */
export async function startServer(yaml: string, concurrency = 1): Promise<RunningServer> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_health_" });
  const path = `${dir}/bootstrap.yaml`;
  await Deno.writeTextFile(path, yaml.replaceAll("$LOG", `${dir}/access.log`));
  const loaded = await loadConfigFile(path, { crossCheck: checkClusterReferences });
  if (!loaded.ok) throw new Error(`Bad test config:\n${loaded.errors.map(formatConfigError).join("\n")}`);
  const server = new Server(loaded.bootstrap, {
    configPath: path,
    concurrency,
    logLevel: "error",
    raw: loaded.raw,
    commandLine: [],
  });
  let admin: AdminHandle | null = null;
  try {
    await server.start();
    admin = await startAdmin(server, loaded.bootstrap);
  } catch (err) {
    await server.stop(0);
    throw err;
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await admin?.close();
    await server.stop(0);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    server,
    port: server.listeners()[0]?.port ?? 0,
    async admin(p, method = "GET") {
      const r = await fetch(`http://127.0.0.1:${admin!.port}${p}`, { method });
      return await r.text();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Polls `cond` every 20 ms until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The `health_flags` value of `host` ("127.0.0.1:port") in /clusters text. */
export function healthFlagsOf(clustersText: string, cluster: string, host: string): string | undefined {
  const prefix = `${cluster}::${host}::health_flags::`;
  return clustersText.split("\n").find((l) => l.startsWith(prefix))?.slice(prefix.length);
}

/** GETs `url` on a fresh connection; returns status, the x-origin header and the body. */
export async function get(url: string, headers: Record<string, string> = {}): Promise<
  { status: number; origin: string | null; body: string; headers: Headers }
> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const r = await fetch(url, { headers, client });
    return { status: r.status, origin: r.headers.get("x-origin"), body: await r.text(), headers: r.headers };
  } finally {
    client.close();
  }
}

/**
 * A STAND-IN for `nuncio discovery` in tests, until the real registry (src/discovery/) is runnable: a Deno.serve
 * server implementing exactly the contract the agent codes against, and nothing more (no TTL, no sweeper):
 * POST /v1/registration/:service {ip, port, revision?, service_repo_name?, tags?} -> 200, (re)registers with
 * last_check_in = now; DELETE /v1/registration/:service/:ip_address -> 200 (404 when unknown);
 * GET /v1/registration/:service -> {env, service, hosts: [...]}.
 */

/** One host as GET returns it. */
export interface FakeHost {
  ip_address: string;
  port: number;
  revision: string;
  service_repo_name: string;
  last_check_in: string;
  tags: Record<string, unknown>;
}

/** A running stand-in registry. */
export interface FakeRegistry extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Every request seen, as "METHOD /path". */
  requests: string[];
  /** The body of every POST, in order. */
  posts: Record<string, unknown>[];
  /** When set, every request is answered with this status (a registry in trouble). */
  failWith: number | undefined;
  /** Registered hosts of a service (what GET answers). */
  hosts(service: string): FakeHost[];
  /** Resolves once `n` requests matching `re` were seen (bounded by `timeoutMs`). */
  waitFor(re: RegExp, n?: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts the stand-in registry on 127.0.0.1 (port 0 unless given). */
export function startFakeRegistry(port = 0): FakeRegistry {
  const services = new Map<string, Map<string, FakeHost>>();
  const requests: string[] = [];
  const posts: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const reg: FakeRegistry = {
    url: "",
    port: 0,
    requests,
    posts,
    failWith: undefined,
    hosts: (s) => [...(services.get(s)?.values() ?? [])],
    waitFor: (re, n = 1, timeoutMs = 15000) => {
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      const check = () => {
        if (requests.filter((r) => re.test(r)).length < n) return;
        waiters.delete(check);
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(`Fake registry: not ${n} x ${re} within ${timeoutMs} ms; saw ${requests.join(", ")}`),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
      return promise;
    },
    close: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = req.method === "POST" ? await req.text() : "";
    requests.push(`${req.method} ${path}`);
    for (const w of [...waiters]) w();
    if (reg.failWith) return new Response("registry trouble", { status: reg.failWith });
    const m = /^\/v1\/registration\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (!m) return new Response("not found", { status: 404 });
    const service = decodeURIComponent(m[1]);
    const ip = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    if (req.method === "POST" && ip === undefined) {
      const b = JSON.parse(body) as Record<string, unknown>;
      posts.push(b);
      if (typeof b.ip !== "string" || typeof b.port !== "number") return new Response("bad", { status: 400 });
      let hosts = services.get(service);
      if (!hosts) services.set(service, hosts = new Map());
      hosts.set(b.ip, {
        ip_address: b.ip,
        port: b.port,
        revision: String(b.revision ?? ""),
        service_repo_name: String(b.service_repo_name ?? ""),
        last_check_in: new Date().toISOString(),
        tags: (b.tags ?? {}) as Record<string, unknown>,
      });
      return Response.json({});
    }
    if (req.method === "DELETE" && ip !== undefined) {
      const found = services.get(service)?.delete(ip);
      return found ? Response.json({}) : new Response("unknown host", { status: 404 });
    }
    if (req.method === "GET" && ip === undefined) {
      return Response.json({ env: "test", service, hosts: reg.hosts(service) });
    }
    return new Response("method not allowed", { status: 405 });
  });
  reg.port = server.addr.port;
  reg.url = `http://127.0.0.1:${reg.port}`;
  return reg;
}

/**
 * Drives tests/xds_grpc_server.ts (a grpc-js management server that is not nuncio's code) from tests:
 * - `XdsServer`: the subprocess, its recorded events and raw commands (scripted tests, src/xds/grpc_test.ts).
 * - `AutoXdsServer`: a small auto-responder on top of it, for end-to-end tests. The test sets the current
 *   resources per type (`set(typeUrl, version, resources)`); on state-of-the-world streams (ADS or per type)
 *   the driver answers the first request of a type on a stream (and any request without a nonce) with the
 *   current version and a fresh nonce, answers a change of resource names (RDS/EDS) with the named resources,
 *   ignores ACKs, NACKs and requests carrying a stale nonce, and on `set()` pushes the new version to every open
 *   stream that subscribed to that type. On delta streams it sends what the client does not hold yet (each
 *   resource's version is a hash of its content; `initial_resource_versions` is honoured), answers
 *   `resource_names_subscribe`, and on `set()` sends changed resources and `removed_resources`.
 */

const SERVER = new URL("./xds_grpc_server.ts", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any -- JSON events of the server
export type Json = any;

/** Polls `f` until it returns something other than undefined or false. */
export async function waitFor<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The grpc-js server subprocess. */
export class XdsServer {
  events: Json[] = [];
  port = 0;
  /** Called with each event as it arrives, in order. */
  onEvent: ((e: Json) => void) | undefined;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #reader: Promise<void>;

  private constructor(port: number) {
    const child = this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", SERVER, String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = child.stdin.getWriter();
    this.#reader = (async () => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of child.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.startsWith("{")) continue;
          const e = JSON.parse(line);
          this.events.push(e);
          this.onEvent?.(e);
        }
      }
    })();
  }

  static async start(port = 0): Promise<XdsServer> {
    const s = new XdsServer(port);
    const ev = await waitFor(
      "the server to listen",
      () => s.events.find((e) => e.event === "listening"),
      30_000,
    );
    s.port = ev.port;
    return s;
  }

  /** Requests received (optionally on one stream / of one type). */
  requests(filter: { stream?: number; type?: string } = {}): Json[] {
    return this.events.filter((e) =>
      e.event === "request" && (filter.stream === undefined || e.stream === filter.stream) &&
      (filter.type === undefined || e.req.type_url === filter.type)
    );
  }

  /** Waits until `n` requests match `filter`; returns the n-th. */
  nthRequest(n: number, filter: { stream?: number; type?: string } = {}): Promise<Json> {
    return waitFor(`request #${n} ${JSON.stringify(filter)}`, () => this.requests(filter)[n - 1]);
  }

  streams(): Json[] {
    return this.events.filter((e) => e.event === "open");
  }

  async send(cmd: Json): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
  }

  respond(stream: number, type: string, version: string, nonce: string, resources: Json[]): Promise<void> {
    return this.send({
      cmd: "respond",
      stream,
      response: { version_info: version, type_url: type, nonce, resources },
    });
  }

  /** Kills the process (SIGKILL: the server is gone without a word). */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#finish();
  }

  /** Shuts the server down cleanly. */
  async stop(): Promise<void> {
    await this.send({ cmd: "shutdown" }).catch(() => {});
    await this.#finish();
  }

  async #finish(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.#child.status;
    await this.#reader;
  }
}

const EDS_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/** A resource's name: `cluster_name` for ClusterLoadAssignment, `name` otherwise. */
function nameOf(typeUrl: string, r: Json): string {
  return typeUrl === EDS_TYPE ? r.cluster_name : r.name;
}

/** A short content hash: a delta resource's version. */
function hash(r: Json): string {
  let h = 0x811c9dc5;
  for (const c of JSON.stringify(r)) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16);
}

interface SotwState {
  delta: false;
  /** The subscribed names (empty: wildcard) of the last request. */
  names: string[];
  /** The nonce of the last response sent (undefined: none yet). */
  nonce: string | undefined;
  /** The names the last response was built for. */
  sentNames: string;
}

interface DeltaState {
  delta: true;
  wildcard: boolean;
  subscribed: Set<string>;
  /** What the client holds, name -> version. */
  known: Map<string, string>;
}

/** See the file comment. */
export class AutoXdsServer {
  server: XdsServer;
  /** Every request received, across restarts (each with `generation`: 0, then 1 after the first restart...). */
  readonly history: Json[] = [];
  #generation = 0;
  readonly #current = new Map<string, { version: string; resources: Json[] }>();
  /** stream -> type -> state, for streams that are open. */
  #streams = new Map<number, Map<string, SotwState | DeltaState>>();
  #delta = new Map<number, boolean>();
  #nonce = 0;
  #writes: Promise<unknown>[] = [];

  private constructor(server: XdsServer) {
    this.server = server;
    this.#attach();
  }

  static async start(port = 0): Promise<AutoXdsServer> {
    return new AutoXdsServer(await XdsServer.start(port));
  }

  get port(): number {
    return this.server.port;
  }

  /** Requests of the current server process (optionally of one type). */
  requests(type?: string): Json[] {
    return this.server.requests(type === undefined ? {} : { type });
  }

  /** Makes `resources` the current state of `typeUrl` and pushes it to every stream subscribed to that type. */
  async set(typeUrl: string, version: string, resources: Json[]): Promise<void> {
    this.#current.set(typeUrl, { version, resources });
    for (const [stream, types] of this.#streams) {
      const st = types.get(typeUrl);
      if (!st) continue;
      if (st.delta) this.#pushDelta(stream, typeUrl, st, false);
      else this.#respond(stream, typeUrl, st);
    }
    await this.#flush();
  }

  /** Kills the process (SIGKILL). */
  async kill(): Promise<void> {
    await this.server.kill();
    this.#streams.clear();
    await this.#flush();
  }

  /** Starts a new process on the same port; the current resources are kept. */
  async restart(): Promise<void> {
    this.server = await XdsServer.start(this.server.port);
    this.#generation++;
    this.#attach();
  }

  /** Shuts the server down. */
  async stop(): Promise<void> {
    await this.server.stop();
    await this.#flush();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #flush(): Promise<void> {
    const w = this.#writes;
    this.#writes = [];
    await Promise.all(w);
  }

  #attach(): void {
    const server = this.server;
    for (const e of server.events) this.#event(server, e);
    server.onEvent = (e) => this.#event(server, e);
  }

  #event(server: XdsServer, e: Json): void {
    if (server !== this.server) return;
    switch (e.event) {
      case "open":
        this.#streams.set(e.stream, new Map());
        this.#delta.set(e.stream, String(e.method).includes("/Delta"));
        return;
      case "closed":
        this.#streams.delete(e.stream);
        return;
      case "request":
        this.history.push({ ...e, generation: this.#generation });
        if (this.#delta.get(e.stream)) this.#deltaRequest(e.stream, e.req);
        else this.#sotwRequest(e.stream, e.req);
    }
  }

  #sotwRequest(stream: number, req: Json): void {
    const types = this.#streams.get(stream);
    if (!types) return;
    const type = req.type_url as string;
    let st = types.get(type) as SotwState | undefined;
    if (!st) {
      st = { delta: false, names: [], nonce: undefined, sentNames: "" };
      types.set(type, st);
    }
    st.names = [...(req.resource_names ?? [])].sort();
    const nonce = req.response_nonce ?? "";
    const cur = this.#current.get(type);
    let answer: boolean;
    if (nonce === "") answer = true; // the first on this stream for the type
    else if (nonce !== st.nonce) answer = false; // stale: a newer response is on its way
    else if (st.names.join(",") !== st.sentNames) answer = true; // names changed
    else answer = !req.error_detail && cur !== undefined && req.version_info !== cur.version;
    if (answer) this.#respond(stream, type, st);
  }

  #respond(stream: number, type: string, st: SotwState): void {
    const cur = this.#current.get(type);
    if (!cur) return;
    const nonce = String(++this.#nonce);
    st.nonce = nonce;
    st.sentNames = st.names.join(",");
    const resources = st.names.length === 0
      ? cur.resources
      : cur.resources.filter((r) => st.names.includes(nameOf(type, r)));
    this.#writes.push(
      this.server.respond(
        stream,
        type,
        cur.version,
        nonce,
        resources.map((r) => ({ json: { "@type": type, ...r } })),
      )
        .catch(() => {}),
    );
  }

  #deltaRequest(stream: number, req: Json): void {
    const types = this.#streams.get(stream);
    if (!types) return;
    const type = req.type_url as string;
    let st = types.get(type) as DeltaState | undefined;
    const first = !st;
    const subscribe: string[] = req.resource_names_subscribe ?? [];
    if (!st) {
      st = {
        delta: true,
        wildcard: subscribe.length === 0,
        subscribed: new Set(),
        known: new Map(Object.entries(req.initial_resource_versions ?? {})),
      };
      types.set(type, st);
    }
    for (const n of subscribe) st.subscribed.add(n);
    for (const n of req.resource_names_unsubscribe ?? []) {
      st.subscribed.delete(n);
      st.known.delete(n);
    }
    if (first || subscribe.length > 0) this.#pushDelta(stream, type, st, first);
  }

  #pushDelta(stream: number, type: string, st: DeltaState, always: boolean): void {
    const cur = this.#current.get(type);
    if (!cur) return;
    const wanted = cur.resources.filter((r) => st.wildcard || st.subscribed.has(nameOf(type, r)));
    const names = new Set(wanted.map((r) => nameOf(type, r)));
    const changed = wanted.filter((r) => st.known.get(nameOf(type, r)) !== hash(r));
    const removed = [...st.known.keys()].filter((n) => !names.has(n));
    if (!always && changed.length === 0 && removed.length === 0) return;
    for (const r of changed) st.known.set(nameOf(type, r), hash(r));
    for (const n of removed) st.known.delete(n);
    this.#writes.push(
      this.server.send({
        cmd: "delta",
        stream,
        response: {
          system_version_info: cur.version,
          type_url: type,
          nonce: String(++this.#nonce),
          removed_resources: removed,
          resources: changed.map((r) => ({
            name: nameOf(type, r),
            version: hash(r),
            json: { "@type": type, ...r },
          })),
        },
      }).catch(() => {}),
    );
  }
}

/**
 * An auto-responding ADS management server for benchmarks: tests/xds_grpc_server.ts (grpc-js with Envoy's own
 * discovery protos) in its own supervised process, driven over stdin/stdout. State of the world per type: the
 * bench sets each type's resources (pre-encoded protobuf, so encoding is not timed) and every ADS stream gets
 * what it asked for (EDS/RDS: only the requested names) whenever a stream opens, its names change, or the state
 * changes. ACKs and NACKs are recorded so a bench can wait until a version is applied.
 */
import { Buffer } from "node:buffer";
import { encodeAny } from "../src/xds/codec/mod.ts";
import type { Managed, Supervisor } from "./lib/proc.ts";
import { tailFile } from "./lib/proc.ts";

/** Envoy v3 type URLs. */
export const TYPES = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
} as const;

/** A resource encoded once: its name and its Any's protobuf bytes (base64). */
export interface Encoded {
  name: string;
  b64: string;
}

/** Encodes a resource's JSON form (without "@type") as `typeUrl`. */
export function encodeResource(typeUrl: string, name: string, json: Record<string, unknown>): Encoded {
  return { name, b64: Buffer.from(encodeAny(typeUrl, json)).toString("base64") };
}

interface StreamType {
  names: string;
  sentVersion: string;
  /** Version sent with each nonce (an ACK may name any of them: names changes resend a version). */
  nonces: Map<string, string>;
}

// deno-lint-ignore no-explicit-any -- JSON events of the server
type Json = any;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `p`, or `fallback` after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** See the file comment. */
export class AdsPeer {
  readonly proc: Managed;
  port = 0;
  /** Per type: version and resources by name. */
  readonly #state = new Map<string, { version: string; resources: Map<string, Encoded> }>();
  /** Per ADS stream: per type, what it asked for and what it was sent. */
  readonly #streams = new Map<number, Map<string, StreamType>>();
  /** Per type: versions ACKed (any stream). */
  readonly #acked = new Map<string, Set<string>>();
  /** NACK messages received. */
  readonly nacks: string[] = [];
  /** First time a request of each type arrived (performance.now()). */
  readonly firstRequestAt = new Map<string, number>();
  #nonce = 0;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #writes: Promise<void> = Promise.resolve();
  #reader: Promise<void>;
  #listening: ((port: number) => void) | undefined;
  #wakers: (() => void)[] = [];

  private constructor(proc: Managed) {
    this.proc = proc;
    this.#writer = proc.child.stdin.getWriter();
    this.#reader = this.#read(proc.child.stdout);
  }

  /** Starts the server on a free port (bounded wait); `root` is the repository root. */
  static async start(sup: Supervisor, o: { root: string; dir: string; name?: string }): Promise<AdsPeer> {
    const name = o.name ?? "xds-server";
    const logPath = `${o.dir}/${name}.log`;
    const proc = sup.spawn(
      name,
      Deno.execPath(),
      ["run", "-A", "--quiet", `${o.root}/tests/xds_grpc_server.ts`, "0"],
      { pipe: true, logPath, cwd: o.root },
    );
    const peer = new AdsPeer(proc);
    const port = await within(
      Promise.race([
        new Promise<number>((resolve) => (peer.#listening = resolve)),
        proc.status.then(() => -1),
      ]),
      60_000,
      0,
    );
    if (port <= 0) {
      await proc.stop();
      throw new Error(
        `The ADS server did not start: ${port < 0 ? "exited" : "timeout"}\n${tailFile(logPath)}`,
      );
    }
    peer.port = port;
    return peer;
  }

  async #read(stdout: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of stdout) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith("{")) this.#event(JSON.parse(line));
        }
      }
    } catch {
      // the process went away
    }
  }

  #event(e: Json): void {
    if (e.event === "listening") this.#listening?.(e.port);
    else if (e.event === "open") this.#streams.set(e.stream, new Map());
    else if (e.event === "closed") this.#streams.delete(e.stream);
    else if (e.event === "request") this.#request(e.stream, e.req);
    const w = this.#wakers.splice(0);
    for (const f of w) f();
  }

  #request(stream: number, req: Json): void {
    const type: string = req.type_url;
    if (!this.firstRequestAt.has(type)) this.firstRequestAt.set(type, performance.now());
    const types = this.#streams.get(stream) ?? new Map<string, StreamType>();
    this.#streams.set(stream, types);
    let st = types.get(type);
    if (!st) types.set(type, st = { names: "", sentVersion: "", nonces: new Map() });
    const sent = req.response_nonce ? st.nonces.get(req.response_nonce) : undefined;
    if (sent !== undefined) {
      st.nonces.delete(req.response_nonce);
      if (req.error_detail) this.nacks.push(String(req.error_detail.message ?? "NACK"));
      else if ((req.version_info ?? "") === sent) {
        const set = this.#acked.get(type) ?? new Set<string>();
        set.add(req.version_info ?? "");
        this.#acked.set(type, set);
      }
    }
    const names = JSON.stringify(req.resource_names ?? []);
    const changed = names !== st.names;
    st.names = names;
    const state = this.#state.get(type);
    if (state && (changed || st.sentVersion !== state.version)) this.#send(stream, type, st, null);
  }

  /** Sends the type's state to one stream (only `only` when given: a partial EDS/RDS update). */
  #send(stream: number, type: string, st: StreamType, only: Set<string> | null): void {
    const state = this.#state.get(type)!;
    const wanted: string[] = JSON.parse(st.names || "[]");
    const wildcard = type === TYPES.cluster || type === TYPES.listener;
    let list: Encoded[];
    if (wildcard || wanted.length === 0) list = [...state.resources.values()];
    else list = wanted.map((n) => state.resources.get(n)).filter((r): r is Encoded => r !== undefined);
    if (only) list = list.filter((r) => only.has(r.name));
    if (!wildcard && list.length === 0 && only) return;
    const nonce = String(++this.#nonce);
    st.sentVersion = state.version;
    st.nonces.set(nonce, state.version);
    const cmd = {
      cmd: "respond",
      stream,
      response: {
        version_info: state.version,
        type_url: type,
        nonce,
        resources: list.map((r) => ({ type_url: type, b64: r.b64 })),
      },
    };
    const bytes = new TextEncoder().encode(JSON.stringify(cmd) + "\n");
    this.#writes = this.#writes.then(() => this.#writer.write(bytes)).catch(() => {});
  }

  /**
   * Sets the state of `type` at `version`: `replace` replaces every resource (CDS/LDS state of the world);
   * otherwise the given resources are updated in place and only they are sent (EDS/RDS partial update).
   */
  set(type: string, version: string, resources: Encoded[], replace: boolean): void {
    const prev = this.#state.get(type);
    const map = replace || !prev ? new Map<string, Encoded>() : prev.resources;
    for (const r of resources) map.set(r.name, r);
    this.#state.set(type, { version, resources: map });
    const only = replace ? null : new Set(resources.map((r) => r.name));
    for (const [stream, types] of this.#streams) {
      const st = types.get(type);
      if (st) this.#send(stream, type, st, only);
    }
  }

  /** True once any stream ACKed `version` of `type`. */
  acked(type: string, version: string): boolean {
    return this.#acked.get(type)?.has(version) ?? false;
  }

  /** Resolves once `version` of `type` is ACKed; throws on timeout or when a NACK arrives meanwhile. */
  async waitAck(type: string, version: string, timeoutMs: number): Promise<void> {
    const end = performance.now() + timeoutMs;
    const nacks = this.nacks.length;
    while (!this.acked(type, version)) {
      if (this.nacks.length > nacks) throw new Error(`NACK: ${this.nacks.at(-1)}`);
      if (this.proc.exited()) throw new Error("the ADS server exited");
      const left = end - performance.now();
      if (left <= 0) throw new Error(`no ACK of ${type.split(".").at(-1)} ${version} in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#wakers.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves once a request of `type` arrived (bounded). */
  async waitRequest(type: string, timeoutMs: number): Promise<void> {
    const end = performance.now() + timeoutMs;
    while (!this.firstRequestAt.has(type)) {
      if (performance.now() > end) throw new Error(`no ${type.split(".").at(-1)} request in ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Shuts the server down and waits for it (killed if it does not go). */
  async stop(): Promise<void> {
    await this.#writes;
    const bye = new TextEncoder().encode(JSON.stringify({ cmd: "shutdown" }) + "\n");
    await this.#writer.write(bye).catch(() => {});
    await this.#writer.close().catch(() => {});
    await within(this.proc.status.then(() => undefined), 2000, undefined);
    await this.proc.stop();
    await this.#reader;
  }
}

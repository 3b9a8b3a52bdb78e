/**
 * A small Kafka broker speaking the wire protocol, for end-to-end tests of the kafka_broker filter with a real
 * client (kafkajs): one node, an in-memory log per partition, one consumer group coordinator. It answers
 * ApiVersions, Metadata (advertising the address the test gives it, i.e. the proxy's listener, so the client
 * keeps talking through the proxy), CreateTopics, Produce, ListOffsets, Fetch (honouring max_wait), and the
 * group APIs FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch and LeaveGroup, each in
 * one version (advertised as the only one, so the client picks it). Record batches (magic 2) are stored as sent
 * with their base offset assigned. It counts every request it answers by api_key.
 */

/** The API versions this broker speaks (min = max: kafkajs uses min(its best, our max)). */
export const BROKER_VERSIONS: Readonly<Record<number, number>> = {
  0: 3, // Produce (record batches)
  1: 4, // Fetch (record batches, isolation level)
  2: 1, // ListOffsets
  3: 1, // Metadata
  8: 2, // OffsetCommit
  9: 1, // OffsetFetch
  10: 1, // FindCoordinator
  11: 1, // JoinGroup
  12: 0, // Heartbeat
  13: 0, // LeaveGroup
  14: 0, // SyncGroup
  18: 2, // ApiVersions (v0-2)
  19: 0, // CreateTopics
};

const ERR_UNKNOWN_TOPIC = 3;
const ERR_UNSUPPORTED_VERSION = 35;
const ERR_TOPIC_EXISTS = 36;

class Reader {
  at = 0;
  readonly #v: DataView;
  constructor(readonly b: Uint8Array) {
    this.#v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  int8(): number {
    return this.#v.getInt8(this.at++);
  }
  int16(): number {
    const v = this.#v.getInt16(this.at);
    this.at += 2;
    return v;
  }
  int32(): number {
    const v = this.#v.getInt32(this.at);
    this.at += 4;
    return v;
  }
  int64(): number {
    const v = Number(this.#v.getBigInt64(this.at));
    this.at += 8;
    return v;
  }
  string(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    const s = new TextDecoder().decode(this.b.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
  bytes(): Uint8Array | null {
    const n = this.int32();
    if (n < 0) return null;
    const s = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }
  array<T>(f: (r: Reader) => T): T[] | null {
    const n = this.int32();
    if (n < 0) return null;
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(f(this));
    return out;
  }
}

class Out {
  parts: number[] = [];
  int8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  int16(v: number): this {
    this.parts.push((v >> 8) & 0xff, v & 0xff);
    return this;
  }
  int32(v: number): this {
    this.parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  int64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(v));
    return this.raw(b);
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = new TextEncoder().encode(s);
    return this.int16(b.length).raw(b);
  }
  bytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).raw(b);
  }
  array<T>(items: T[], f: (o: Out, t: T) => void): this {
    this.int32(items.length);
    for (const t of items) f(this, t);
    return this;
  }
}

interface Batch {
  base: number;
  count: number;
  bytes: Uint8Array;
}

/** The broker: `port` is where it listens; `advertise` sets the address Metadata and FindCoordinator give. */
export class KafkaWireBroker implements AsyncDisposable {
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  /** Fetches waiting for data: their poll timer and how to end the wait early. */
  readonly #waits = new Map<ReturnType<typeof setTimeout>, () => void>();
  readonly #topics = new Map<string, Batch[][]>();
  readonly #committed = new Map<string, number>();
  #advertised = { host: "127.0.0.1", port: 0 };
  #members = 0;
  #generation = 0;
  #assignments = new Map<string, Uint8Array>();
  #closed = false;
  #accepting: Promise<void>;
  readonly #serving = new Set<Promise<void>>();
  /** Requests answered, by api_key. */
  readonly requests = new Map<number, number>();

  constructor() {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#advertised.port = this.port;
    this.#accepting = this.#accept();
  }

  /** The port the broker listens on. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** The address clients are told to use (the proxy's listener). */
  advertise(host: string, port: number): void {
    this.#advertised = { host, port };
  }

  /** Messages in a partition's log (sum of its batches' record counts). */
  logSize(topic: string, partition = 0): number {
    return (this.#topics.get(topic)?.[partition] ?? []).reduce((n, b) => n + b.count, 0);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      const p = this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        this.#serving.delete(p);
      });
      this.#serving.add(p);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) break;
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        while (buf.length >= 4) {
          const len = new DataView(buf.buffer, buf.byteOffset).getInt32(0);
          if (buf.length < 4 + len) break;
          const req = buf.subarray(4, 4 + len);
          buf = buf.slice(4 + len);
          // answer in order (Kafka answers a connection's requests in the order they came)
          const resp = await this.#handle(new Reader(req));
          if (this.#closed) return;
          await writeAll(conn, resp);
        }
      }
    } catch {
      // connection reset or closed by close()
    } finally {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  async #handle(r: Reader): Promise<Uint8Array> {
    const key = r.int16();
    const version = r.int16();
    const cid = r.int32();
    r.string(); // client_id
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const o = new Out().int32(cid);
    if (key === 18) this.#apiVersions(o, version);
    else if (BROKER_VERSIONS[key] !== version) {
      throw new Error(`KafkaWireBroker: api_key ${key} v${version} not spoken`);
    } else {
      switch (key) {
        case 3:
          this.#metadata(r, o);
          break;
        case 19:
          this.#createTopics(r, o);
          break;
        case 0:
          this.#produce(r, o);
          break;
        case 2:
          this.#listOffsets(r, o);
          break;
        case 1:
          await this.#fetch(r, o);
          break;
        case 10:
          this.#findCoordinator(o);
          break;
        case 11:
          this.#joinGroup(r, o);
          break;
        case 14:
          this.#syncGroup(r, o);
          break;
        case 12:
        case 13:
          o.int16(0);
          break;
        case 8:
          this.#offsetCommit(r, o);
          break;
        case 9:
          this.#offsetFetch(r, o);
          break;
      }
    }
    const body = new Uint8Array(o.parts);
    const framed = new Uint8Array(4 + body.length);
    new DataView(framed.buffer).setInt32(0, body.length);
    framed.set(body, 4);
    return framed;
  }

  #apiVersions(o: Out, version: number): void {
    if (version > 2) {
      // the client retries with a version we list (Kafka answers this in v0 layout)
      o.int16(ERR_UNSUPPORTED_VERSION).array([[18, 0, 2]], (x, [k, a, b]) => x.int16(k).int16(a).int16(b));
      return;
    }
    const entries = Object.entries(BROKER_VERSIONS).map(([k, v]) => [Number(k), k === "18" ? 0 : v, v]);
    o.int16(0).array(entries, (x, [k, a, b]) => x.int16(k).int16(a).int16(b));
    if (version >= 1) o.int32(0);
  }

  #metadata(r: Reader, o: Out): void {
    const asked = r.array((x) => x.string()!);
    const names = asked ?? [...this.#topics.keys()];
    o.array([0], (x) => x.int32(0).string(this.#advertised.host).int32(this.#advertised.port).string(null));
    o.int32(0); // controller
    o.array(names, (x, name) => {
      const parts = this.#topics.get(name);
      x.int16(parts ? 0 : ERR_UNKNOWN_TOPIC).string(name).int8(0);
      x.array(parts ? parts.map((_, i) => i) : [], (y, p) => {
        y.int16(0).int32(p).int32(0).array([0], (z) => z.int32(0)).array([0], (z) => z.int32(0));
      });
    });
  }

  #createTopics(r: Reader, o: Out): void {
    const topics = r.array((x) => {
      const name = x.string()!;
      const partitions = x.int32();
      x.int16();
      x.array((y) => (y.int32(), y.array((z) => z.int32())));
      x.array((y) => (y.string(), y.string()));
      return { name, partitions };
    })!;
    r.int32(); // timeout
    o.array(topics, (x, t) => {
      if (this.#topics.has(t.name)) {
        x.string(t.name).int16(ERR_TOPIC_EXISTS);
        return;
      }
      this.#topics.set(t.name, Array.from({ length: Math.max(1, t.partitions) }, () => []));
      x.string(t.name).int16(0);
    });
  }

  #produce(r: Reader, o: Out): void {
    r.string(); // transactional id
    r.int16(); // acks (kafkajs waits for acks: -1)
    r.int32(); // timeout
    const topics = r.array((x) => ({
      name: x.string()!,
      parts: x.array((y) => ({ index: y.int32(), records: y.bytes() }))!,
    }))!;
    o.array(topics, (x, t) => {
      x.string(t.name).array(t.parts, (y, p) => {
        const log = this.#topics.get(t.name)?.[p.index];
        if (!log) {
          y.int32(p.index).int16(ERR_UNKNOWN_TOPIC).int64(-1).int64(-1);
          return;
        }
        const base = log.reduce((n, b) => n + b.count, 0);
        let next = base;
        const recs = p.records ?? new Uint8Array(0);
        for (let at = 0; at + 61 <= recs.length;) {
          const v = new DataView(recs.buffer, recs.byteOffset + at);
          const size = 12 + v.getInt32(8);
          const bytes = recs.slice(at, at + size);
          const count = v.getInt32(23) + 1; // last offset delta + 1
          new DataView(bytes.buffer).setBigInt64(0, BigInt(next));
          log.push({ base: next, count, bytes });
          next += count;
          at += size;
        }
        y.int32(p.index).int16(0).int64(base).int64(-1);
      });
    });
    o.int32(0); // throttle
  }

  #listOffsets(r: Reader, o: Out): void {
    r.int32(); // replica
    const topics = r.array((x) => ({
      name: x.string()!,
      parts: x.array((y) => ({ index: y.int32(), ts: y.int64() }))!,
    }))!;
    o.array(topics, (x, t) => {
      x.string(t.name).array(t.parts, (y, p) => {
        const size = this.logSize(t.name, p.index);
        y.int32(p.index).int16(0).int64(-1).int64(p.ts === -2 ? 0 : size);
      });
    });
  }

  async #fetch(r: Reader, o: Out): Promise<void> {
    r.int32(); // replica
    const maxWait = r.int32();
    r.int32(); // min bytes
    r.int32(); // max bytes
    r.int8(); // isolation
    const topics = r.array((x) => ({
      name: x.string()!,
      parts: x.array((y) => ({ index: y.int32(), offset: y.int64(), max: y.int32() }))!,
    }))!;
    const pending = () => topics.some((t) => t.parts.some((p) => this.logSize(t.name, p.index) > p.offset));
    const deadline = Date.now() + Math.min(maxWait, 1000);
    while (!pending() && !this.#closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const id = setTimeout(() => {
          this.#waits.delete(id);
          resolve();
        }, 10);
        this.#waits.set(id, resolve);
      });
    }
    o.int32(0); // throttle
    o.array(topics, (x, t) => {
      x.string(t.name).array(t.parts, (y, p) => {
        const log = this.#topics.get(t.name)?.[p.index];
        if (!log) {
          y.int32(p.index).int16(ERR_UNKNOWN_TOPIC).int64(-1).int64(-1).int32(-1).bytes(null);
          return;
        }
        const size = log.reduce((n, b) => n + b.count, 0);
        const batches = log.filter((b) => b.base + b.count > p.offset);
        const out: number[] = [];
        for (const b of batches) {
          if (out.length > 0 && out.length + b.bytes.length > p.max) break;
          for (const x of b.bytes) out.push(x);
        }
        y.int32(p.index).int16(0).int64(size).int64(size).int32(-1).bytes(new Uint8Array(out));
      });
    });
  }

  #findCoordinator(o: Out): void {
    o.int32(0).int16(0).string(null).int32(0).string(this.#advertised.host).int32(this.#advertised.port);
  }

  #joinGroup(r: Reader, o: Out): void {
    r.string(); // group
    r.int32(); // session timeout
    r.int32(); // rebalance timeout
    let member = r.string()!;
    r.string(); // protocol type
    const protocols = r.array((x) => ({ name: x.string()!, metadata: x.bytes()! }))!;
    if (member === "") member = `member-${++this.#members}`;
    this.#generation++;
    // one member per group here: it leads, and gets itself as the only member
    o.int16(0).int32(this.#generation).string(protocols[0].name).string(member).string(member);
    o.array([member], (x, m) => x.string(m).bytes(protocols[0].metadata));
  }

  #syncGroup(r: Reader, o: Out): void {
    r.string(); // group
    r.int32(); // generation
    const member = r.string()!;
    const given = r.array((x) => ({ member: x.string()!, assignment: x.bytes()! }))!;
    for (const g of given) this.#assignments.set(g.member, g.assignment);
    o.int16(0).bytes(this.#assignments.get(member) ?? new Uint8Array(0));
  }

  #offsetCommit(r: Reader, o: Out): void {
    const group = r.string()!;
    r.int32(); // generation
    r.string(); // member
    r.int64(); // retention
    const topics = r.array((x) => ({
      name: x.string()!,
      parts: x.array((y) => ({ index: y.int32(), offset: y.int64(), meta: y.string() }))!,
    }))!;
    o.array(topics, (x, t) => {
      x.string(t.name).array(t.parts, (y, p) => {
        this.#committed.set(`${group}/${t.name}/${p.index}`, p.offset);
        y.int32(p.index).int16(0);
      });
    });
  }

  #offsetFetch(r: Reader, o: Out): void {
    const group = r.string()!;
    const topics = r.array((x) => ({ name: x.string()!, parts: x.array((y) => y.int32())! }))!;
    o.array(topics, (x, t) => {
      x.string(t.name).array(t.parts, (y, p) => {
        y.int32(p).int64(this.#committed.get(`${group}/${t.name}/${p}`) ?? -1).string("").int16(0);
      });
    });
  }

  /** Stops listening, closes every connection and pending wait, and waits for the handlers to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const [id, resolve] of this.#waits) {
      clearTimeout(id);
      resolve();
    }
    this.#waits.clear();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    await this.#accepting;
    await Promise.all([...this.#serving]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

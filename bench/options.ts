/** Command-line options of bench/run.ts. */

/** Parsed flags (durations in seconds). */
export interface Options {
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  /** h2load clients (-c) of the HTTP/2 and gRPC lines. */
  h2Clients: number;
  /** h2load concurrent streams per client (-m). */
  h2Streams: number;
  rounds: number;
  c1S: number;
  idleConns: number;
  memory: boolean;
  compareMemory: boolean;
  nuncio: boolean;
  nuncioBin?: string;
  json?: string;
  strict: boolean;
  only?: string[];
  keep: boolean;
  /** xDS bench (issue 11): dynamic clusters, endpoints over them, successive versions of the RSS test. */
  xdsClusters: number;
  xdsEndpoints: number;
  xdsUpdates: number;
}

/** Help text. */
export const USAGE = `usage: deno task bench [options]
  --quick              smoke run: 2 s per measurement, 1 round, no memory comparison, 100 xDS updates
  --duration S         seconds per measurement (default 6)
  --warmup S           warm-up seconds per target before the rounds (default 3)
  --connections N      wrk connections (default 64)
  --threads N          wrk threads (default 1)
  --h2-clients N       h2load clients for the HTTP/2 and gRPC lines (default 32)
  --h2-streams N       h2load concurrent streams per client (default 10)
  --rounds N           interleaved rounds, median reported (default 5)
  --c1 S               seconds of the single-connection latency run, 0 to skip (default 3)
  --idle-conns N       idle connections for the memory test (default 10000)
  --no-memory          skip the memory test
  --no-compare-memory  skip nginx/HAProxy per-connection memory (--compare-memory turns it on)
  --no-nuncio          measure nginx and HAProxy only
  --nuncio-bin PATH    run a compiled nuncio instead of 'deno run main.ts'
  --only a,b           only these targets (direct,nginx,deno-floor,haproxy-http,haproxy-tcp,nuncio-http,
                       nuncio-tcp,nuncio-resilient,nuncio-ratelimit,haproxy-h2,nuncio-h2,grpc-direct,nuncio-grpc,xds,
                       registry: check-ins/s of nuncio discovery with 10,000 hosts, memory and Redis;
                       control-plane: snapshot build of 1,000 services, 100 ADS proxies' convergence, RSS;
                       compression: gzip responses/s of nuncio's compressor vs nginx's gzip, level 6;
                       startup: exec to serving and to /ready on the demo config;
                       mongo: Mongo round trips/s through mongo_proxy against direct;
                       redis: redis-benchmark GET/SET through redis_proxy against twemproxy and direct;
                       tracing: req/s with zipkin tracing at 100 % sampling against off)
  --xds-clusters N     xDS bench: dynamic clusters to warm (default 1000)
  --xds-endpoints N    xDS bench: endpoints over those clusters (default 10000)
  --xds-updates N      xDS bench: successive versions of the RSS test (default 1000, 0 to skip)
  --json FILE          also write the results as JSON
  --strict             exit 1 if a ratio or memory target fails
  --keep               keep the temp dir with configs and logs`;

/** Parses the command line; prints help and exits on --help; throws on unknown flags. */
export function parseOptions(argv: string[]): Options {
  const o: Options = {
    durationS: 6,
    warmupS: 3,
    connections: 64,
    threads: 1,
    h2Clients: 32,
    h2Streams: 10,
    rounds: 5,
    c1S: 3,
    idleConns: 10_000,
    memory: true,
    compareMemory: true,
    nuncio: true,
    strict: false,
    keep: false,
    xdsClusters: 1000,
    xdsEndpoints: 10_000,
    xdsUpdates: 1000,
  };
  const num = (i: number) => {
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`Bad value for ${argv[i]}: ${argv[i + 1]}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") {
      Object.assign(o, {
        durationS: 2,
        warmupS: 1,
        rounds: 1,
        c1S: 1,
        compareMemory: false,
        xdsUpdates: 100,
      });
    } else if (a === "--duration") o.durationS = num(i++);
    else if (a === "--warmup") o.warmupS = num(i++);
    else if (a === "--connections") o.connections = num(i++);
    else if (a === "--threads") o.threads = num(i++);
    else if (a === "--h2-clients") o.h2Clients = Math.max(1, num(i++));
    else if (a === "--h2-streams") o.h2Streams = Math.max(1, num(i++));
    else if (a === "--rounds") o.rounds = Math.max(1, num(i++));
    else if (a === "--c1") o.c1S = num(i++);
    else if (a === "--idle-conns") o.idleConns = num(i++);
    else if (a === "--no-memory") o.memory = false;
    else if (a === "--no-compare-memory") o.compareMemory = false;
    else if (a === "--compare-memory") o.compareMemory = true;
    else if (a === "--no-nuncio") o.nuncio = false;
    else if (a === "--nuncio-bin") o.nuncioBin = argv[++i];
    else if (a === "--only") o.only = (argv[++i] ?? "").split(",");
    else if (a === "--json") o.json = argv[++i];
    else if (a === "--strict") o.strict = true;
    else if (a === "--keep") o.keep = true;
    else if (a === "--xds-clusters") o.xdsClusters = Math.max(1, num(i++));
    else if (a === "--xds-endpoints") o.xdsEndpoints = Math.max(1, num(i++));
    else if (a === "--xds-updates") o.xdsUpdates = num(i++);
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else throw new Error(`Unknown option ${a}\n${USAGE}`);
  }
  return o;
}

/** The one file that imports every built-in extension and registers it (core never imports extensions). */
import { fileAccessLog } from "../extensions/access_loggers/file/mod.ts";
import { stderrAccessLog, stdoutAccessLog } from "../extensions/access_loggers/stdout/mod.ts";
import { router } from "../extensions/filters/http/router/mod.ts";
import { httpHealthCheck } from "../extensions/filters/http/health_check/mod.ts";
import { httpBuffer } from "../extensions/filters/http/buffer/mod.ts";
import { grpcHttp1Bridge } from "../extensions/filters/http/grpc_http1_bridge/mod.ts";
import { grpcWeb } from "../extensions/filters/http/grpc_web/mod.ts";
import { httpFault } from "../extensions/filters/http/fault/mod.ts";
import { httpLocalRateLimit } from "../extensions/filters/http/local_ratelimit/mod.ts";
import { networkLocalRateLimit } from "../extensions/filters/network/local_ratelimit/mod.ts";
import { httpConnectionManager } from "../extensions/filters/network/http_connection_manager/mod.ts";
import { tcpProxy } from "../extensions/filters/network/tcp_proxy/mod.ts";
import { networkKafkaBroker } from "../extensions/filters/network/kafka_broker/mod.ts";
import { rawBufferTransportSocket, tlsTransportSocket } from "../transport/tls_config.ts";
import { embeddedRatelimitExtension } from "../ratelimit/bootstrap_extension.ts";
import { registerExtension } from "../register/bootstrap_extension.ts";
import { embeddedRegistryExtension } from "../discovery/bootstrap_extension.ts";
import { embeddedControlPlaneExtension } from "../control_plane/bootstrap_extension.ts";
import { httpRateLimit } from "../extensions/filters/http/ratelimit/mod.ts";
import { httpHeaderToMetadata } from "../extensions/filters/http/header_to_metadata/mod.ts";
import { httpHeaderMutation } from "../extensions/filters/http/header_mutation/mod.ts";
import { httpExtAuthz } from "../extensions/filters/http/ext_authz/mod.ts";
import { httpCors } from "../extensions/filters/http/cors/mod.ts";
import { networkRateLimit } from "../extensions/filters/network/ratelimit/mod.ts";
import { httpCompressor } from "../extensions/filters/http/compressor/mod.ts";
import { httpDecompressor } from "../extensions/filters/http/decompressor/mod.ts";
import { gzipCompressor } from "../extensions/compression/gzip/compressor/mod.ts";
import { gzipDecompressor } from "../extensions/compression/gzip/decompressor/mod.ts";
import { brotliCompressor } from "../extensions/compression/brotli/compressor/mod.ts";
import { brotliDecompressor } from "../extensions/compression/brotli/decompressor/mod.ts";
import { zstdCompressor } from "../extensions/compression/zstd/compressor/mod.ts";
import { zstdDecompressor } from "../extensions/compression/zstd/decompressor/mod.ts";
import { redisProxy } from "../extensions/filters/network/redis_proxy/mod.ts";
import { mongoProxy } from "../extensions/filters/network/mongo_proxy/mod.ts";
import { statsdSink } from "../extensions/stat_sinks/statsd/mod.ts";
import { dogStatsdSink } from "../extensions/stat_sinks/dog_statsd/mod.ts";
import { zipkinTracer } from "../extensions/tracers/zipkin/mod.ts";
import { openTelemetryTracer } from "../extensions/tracers/opentelemetry/mod.ts";
import { registry } from "./registry.ts";

/** Every built-in extension, in registration order. */
export const BUILTIN_EXTENSIONS = [
  tcpProxy,
  mongoProxy,
  redisProxy,
  httpConnectionManager,
  router,
  httpHealthCheck,
  httpFault,
  httpBuffer,
  grpcHttp1Bridge,
  grpcWeb,
  httpLocalRateLimit,
  networkLocalRateLimit,
  httpRateLimit,
  httpHeaderToMetadata,
  httpHeaderMutation,
  httpExtAuthz,
  networkRateLimit,
  networkKafkaBroker,
  httpCors,
  httpCompressor,
  httpDecompressor,
  gzipCompressor,
  gzipDecompressor,
  brotliCompressor,
  brotliDecompressor,
  zstdCompressor,
  zstdDecompressor,
  stdoutAccessLog,
  stderrAccessLog,
  fileAccessLog,
  tlsTransportSocket,
  rawBufferTransportSocket,
  embeddedRatelimitExtension,
  registerExtension,
  embeddedRegistryExtension,
  embeddedControlPlaneExtension,
  zipkinTracer,
  openTelemetryTracer,
  statsdSink,
  dogStatsdSink,
];

for (const ext of BUILTIN_EXTENSIONS) {
  if (!registry.find(ext.category, ext.name, undefined)) registry.register(ext);
}

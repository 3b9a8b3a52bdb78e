/** Envoy response flags as bits, with their short names for access logs (%RESPONSE_FLAGS%). */
export const ResponseFlag = {
  FailedLocalHealthCheck: 1 << 0, // LH
  NoHealthyUpstream: 1 << 1, // UH
  UpstreamRequestTimeout: 1 << 2, // UT
  LocalReset: 1 << 3, // LR
  UpstreamRemoteReset: 1 << 4, // UR
  UpstreamConnectionFailure: 1 << 5, // UF
  UpstreamConnectionTermination: 1 << 6, // UC
  UpstreamOverflow: 1 << 7, // UO
  NoRouteFound: 1 << 8, // NR
  DelayInjected: 1 << 9, // DI
  FaultInjected: 1 << 10, // FI
  RateLimited: 1 << 11, // RL
  UnauthorizedExternalService: 1 << 23, // UAEX (bit 23: the bits follow the order flags were added)
  UpstreamRetryLimitExceeded: 1 << 12, // URX
  StreamIdleTimeout: 1 << 13, // SI
  DownstreamConnectionTermination: 1 << 14, // DC
  RateLimitServiceError: 1 << 15, // RLSE
  DownstreamProtocolError: 1 << 16, // DPE
  UpstreamProtocolError: 1 << 17, // UPE
  NoClusterFound: 1 << 18, // NC
  DurationTimeout: 1 << 19, // DT
  UpstreamMaxStreamDurationReached: 1 << 20, // UMSDR
  NoFilterConfigFound: 1 << 21, // NFCF
  OverloadManager: 1 << 22, // OM
} as const;

/** Short names in Envoy's print order. */
const NAMES: [number, string][] = [
  [ResponseFlag.FailedLocalHealthCheck, "LH"],
  [ResponseFlag.NoHealthyUpstream, "UH"],
  [ResponseFlag.UpstreamRequestTimeout, "UT"],
  [ResponseFlag.LocalReset, "LR"],
  [ResponseFlag.UpstreamRemoteReset, "UR"],
  [ResponseFlag.UpstreamConnectionFailure, "UF"],
  [ResponseFlag.UpstreamConnectionTermination, "UC"],
  [ResponseFlag.UpstreamOverflow, "UO"],
  [ResponseFlag.NoRouteFound, "NR"],
  [ResponseFlag.DelayInjected, "DI"],
  [ResponseFlag.FaultInjected, "FI"],
  [ResponseFlag.RateLimited, "RL"],
  [ResponseFlag.UnauthorizedExternalService, "UAEX"],
  [ResponseFlag.UpstreamRetryLimitExceeded, "URX"],
  [ResponseFlag.StreamIdleTimeout, "SI"],
  [ResponseFlag.DownstreamConnectionTermination, "DC"],
  [ResponseFlag.RateLimitServiceError, "RLSE"],
  [ResponseFlag.DownstreamProtocolError, "DPE"],
  [ResponseFlag.UpstreamProtocolError, "UPE"],
  [ResponseFlag.NoClusterFound, "NC"],
  [ResponseFlag.DurationTimeout, "DT"],
  [ResponseFlag.UpstreamMaxStreamDurationReached, "UMSDR"],
  [ResponseFlag.NoFilterConfigFound, "NFCF"],
  [ResponseFlag.OverloadManager, "OM"],
];

/** Renders a flag set as Envoy does: comma-separated short names, "-" when none. */
export function formatResponseFlags(flags: number): string {
  if (flags === 0) return "-";
  let out = "";
  for (const [bit, name] of NAMES) {
    if (flags & bit) out = out ? out + "," + name : name;
  }
  return out;
}

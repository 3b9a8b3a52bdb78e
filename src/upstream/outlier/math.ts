/** The outlier detector's arithmetic (pure: unit-tested without threads or timers). */

/** How long an ejection lasts: base × multiplier, capped at max (max never below base, as Envoy). */
export function ejectionTimeMs(baseMs: number, maxMs: number, backoff: number): number {
  return Math.min(baseMs * Math.max(1, backoff), Math.max(maxMs, baseMs));
}

/** The multiplier after one more ejection: it grows while base × multiplier is below max. */
export function nextBackoff(baseMs: number, maxMs: number, backoff: number): number {
  return baseMs * backoff < maxMs ? backoff + 1 : backoff;
}

/**
 * True when one more ejection is allowed: always when none is active (Envoy ejects at least one host),
 * else when the ejected share including this host stays within `maxPercent`.
 */
export function ejectionAllowed(active: number, hostCount: number, maxPercent: number): boolean {
  if (active === 0) return true;
  return hostCount > 0 && (100 * (active + 1)) / hostCount <= maxPercent;
}

/** One host's requests in the last interval. */
export interface HostVolume {
  success: number;
  total: number;
}

/** Result of the success-rate analysis. */
export interface SuccessRateResult {
  /** Mean success rate (percent) over hosts with enough volume; -1 when not computed. */
  mean: number;
  /** Population standard deviation. */
  stdev: number;
  /** Hosts below mean - stdev × factor / 1000 are outliers; -1 when not computed. */
  threshold: number;
  /** Success rate of each host (percent), -1 below the request volume. */
  rates: number[];
  /** Indices of outliers. */
  outliers: number[];
}

/**
 * Envoy's success-rate outlier detection over one interval: hosts with at least `requestVolume` requests
 * count; with fewer than `minimumHosts` of them nothing is computed.
 */
export function successRateOutliers(
  hosts: readonly HostVolume[],
  opts: { minimumHosts: number; requestVolume: number; stdevFactor: number },
): SuccessRateResult {
  const rates = hosts.map((h) =>
    h.total >= opts.requestVolume && h.total > 0 ? (100 * h.success) / h.total : -1
  );
  const valid = rates.filter((r) => r >= 0);
  if (valid.length === 0 || valid.length < opts.minimumHosts) {
    return { mean: -1, stdev: 0, threshold: -1, rates, outliers: [] };
  }
  const mean = valid.reduce((a, b) => a + b, 0) / valid.length;
  const variance = valid.reduce((a, r) => a + (r - mean) * (r - mean), 0) / valid.length;
  const stdev = Math.sqrt(variance);
  const threshold = mean - stdev * (opts.stdevFactor / 1000);
  const outliers: number[] = [];
  rates.forEach((r, i) => {
    if (r >= 0 && r < threshold) outliers.push(i);
  });
  return { mean, stdev, threshold, rates, outliers };
}

/**
 * Envoy's failure-percentage detection: hosts with at least `requestVolume` requests whose failure
 * percentage is at or above `threshold` are outliers, provided at least `minimumHosts` hosts have the volume.
 */
export function failurePercentageOutliers(
  hosts: readonly HostVolume[],
  opts: { minimumHosts: number; requestVolume: number; threshold: number },
): number[] {
  let eligible = 0;
  for (const h of hosts) if (h.total >= opts.requestVolume && h.total > 0) eligible++;
  if (eligible === 0 || eligible < opts.minimumHosts) return [];
  const out: number[] = [];
  hosts.forEach((h, i) => {
    if (
      h.total >= opts.requestVolume && h.total > 0 &&
      (100 * (h.total - h.success)) / h.total >= opts.threshold
    ) {
      out.push(i);
    }
  });
  return out;
}

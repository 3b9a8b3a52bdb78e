import assert from "node:assert/strict";
import {
  ejectionAllowed,
  ejectionTimeMs,
  failurePercentageOutliers,
  nextBackoff,
  successRateOutliers,
} from "./math.ts";

Deno.test("outlier math", async (t) => {
  await t.step("ejection time grows with the multiplier and is capped at max_ejection_time", () => {
    let b = 0;
    const times: number[] = [];
    for (let i = 0; i < 14; i++) {
      b = nextBackoff(30_000, 300_000, b);
      times.push(ejectionTimeMs(30_000, 300_000, b));
    }
    assert.deepEqual(times.slice(0, 4), [30_000, 60_000, 90_000, 120_000]);
    assert.equal(times[9], 300_000);
    assert.equal(times[13], 300_000);
    assert.equal(b, 10); // stops growing once base x multiplier reaches max
    assert.equal(ejectionTimeMs(30_000, 10_000, 3), 30_000); // max below base: base wins
  });

  await t.step("max_ejection_percent, but at least one host", () => {
    assert.equal(ejectionAllowed(0, 3, 10), true);
    assert.equal(ejectionAllowed(1, 3, 10), false);
    assert.equal(ejectionAllowed(1, 20, 10), true); // 2 of 20 = 10 %
    assert.equal(ejectionAllowed(2, 20, 10), false); // 3 of 20 = 15 %
    assert.equal(ejectionAllowed(4, 10, 50), true);
    assert.equal(ejectionAllowed(5, 10, 50), false);
  });

  await t.step("success rate: mean - stdev x factor", () => {
    const hosts = [
      { success: 100, total: 100 },
      { success: 100, total: 100 },
      { success: 100, total: 100 },
      { success: 100, total: 100 },
      { success: 50, total: 100 },
      { success: 1, total: 10 }, // below request volume: ignored
    ];
    const r = successRateOutliers(hosts, { minimumHosts: 5, requestVolume: 100, stdevFactor: 1900 });
    // rates 100,100,100,100,50: mean 90, population stdev 20, threshold 90 - 1.9 x 20 = 52
    assert.equal(r.mean, 90);
    assert.equal(r.stdev, 20);
    assert.ok(Math.abs(r.threshold - 52) < 1e-9);
    assert.deepEqual(r.outliers, [4]);
    assert.equal(r.rates[5], -1);
    const strict = successRateOutliers(hosts, { minimumHosts: 5, requestVolume: 100, stdevFactor: 2500 });
    assert.deepEqual(strict.outliers, []); // 90 - 50 = 40 < 50
  });

  await t.step("success rate needs success_rate_minimum_hosts hosts with volume", () => {
    const hosts = [{ success: 0, total: 100 }, { success: 100, total: 100 }, { success: 100, total: 100 }];
    assert.equal(
      successRateOutliers(hosts, { minimumHosts: 5, requestVolume: 100, stdevFactor: 1900 }).mean,
      -1,
    );
    const r = successRateOutliers(hosts, { minimumHosts: 3, requestVolume: 100, stdevFactor: 1000 });
    assert.deepEqual(r.outliers, [0]);
  });

  await t.step("failure percentage: at or above the threshold, with volume and minimum hosts", () => {
    const hosts = [
      { success: 15, total: 100 }, // 85 % failures: at the threshold
      { success: 20, total: 100 }, // 80 %
      { success: 0, total: 40 }, // below volume
      { success: 100, total: 100 },
      { success: 100, total: 100 },
      { success: 100, total: 100 },
    ];
    const opts = { minimumHosts: 5, requestVolume: 50, threshold: 85 };
    assert.deepEqual(failurePercentageOutliers(hosts, opts), [0]);
    assert.deepEqual(failurePercentageOutliers(hosts, { ...opts, minimumHosts: 6 }), []);
    assert.deepEqual(failurePercentageOutliers(hosts, { ...opts, threshold: 80 }), [0, 1]);
  });
});

/**
 * A strftime subset for %START_TIME(...)%, compiled once per format. Times are UTC like Envoy's.
 * Supported: %Y %y %m %d %e %j %H %I %M %S %p %s %f %1f..%9f %E<n>S %E*S %z %Z %T %F %D %R %a %A %b %B %h %n %t %%;
 * any other specifier is printed as written.
 */

/** Abbreviated weekday names (C locale), indexed by `Date#getDay()`. */
export const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/** Full weekday names (C locale), indexed by `Date#getDay()`. */
export const DAYS_LONG = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
/** Abbreviated month names (C locale), indexed by `Date#getMonth()`. */
export const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** Full month names (C locale), indexed by `Date#getMonth()`. */
export const MONTHS_LONG = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

// Segment codes (a literal segment is a string).
const Y = 1, YY = 2, MON = 3, DAY = 4, DAY_SP = 5, YDAY = 6, HOUR = 7, HOUR12 = 8, MIN = 9, SEC = 10;
const AMPM = 11, EPOCH = 12, FRAC = 13, SEC_FRAC = 14, SEC_FRAC_ALL = 15, WDAY = 16, WDAY_LONG = 17;
const MONTH_NAME = 18, MONTH_LONG = 19;

type Segment = string | { code: number; digits: number };

const pad2 = (n: number): string => (n < 10 ? "0" + n : String(n));

/** A compiled strftime pattern. */
export class TimeFormat {
  readonly #segments: Segment[];

  /** Compiles `pattern` (runs at config time). */
  constructor(pattern: string) {
    this.#segments = compile(pattern);
  }

  /** Formats `ms` (epoch milliseconds, may carry a fraction) in UTC. */
  format(ms: number): string {
    const d = new Date(ms);
    let out = "";
    for (const s of this.#segments) {
      if (typeof s === "string") {
        out += s;
        continue;
      }
      switch (s.code) {
        case Y:
          out += String(d.getUTCFullYear()).padStart(4, "0");
          break;
        case YY:
          out += pad2(d.getUTCFullYear() % 100);
          break;
        case MON:
          out += pad2(d.getUTCMonth() + 1);
          break;
        case DAY:
          out += pad2(d.getUTCDate());
          break;
        case DAY_SP:
          out += String(d.getUTCDate()).padStart(2, " ");
          break;
        case YDAY: {
          const start = Date.UTC(d.getUTCFullYear(), 0, 1);
          out += String(Math.floor((ms - start) / 86_400_000) + 1).padStart(3, "0");
          break;
        }
        case HOUR:
          out += pad2(d.getUTCHours());
          break;
        case HOUR12:
          out += pad2(d.getUTCHours() % 12 || 12);
          break;
        case MIN:
          out += pad2(d.getUTCMinutes());
          break;
        case SEC:
          out += pad2(d.getUTCSeconds());
          break;
        case AMPM:
          out += d.getUTCHours() < 12 ? "AM" : "PM";
          break;
        case EPOCH:
          out += String(Math.floor(ms / 1000));
          break;
        case FRAC:
          out += fraction(ms, s.digits);
          break;
        case SEC_FRAC:
          out += pad2(d.getUTCSeconds()) + (s.digits > 0 ? "." + fraction(ms, s.digits) : "");
          break;
        case SEC_FRAC_ALL: {
          const f = fraction(ms, 9).replace(/0+$/, "");
          out += pad2(d.getUTCSeconds()) + (f ? "." + f : "");
          break;
        }
        case WDAY:
          out += DAYS[d.getUTCDay()];
          break;
        case WDAY_LONG:
          out += DAYS_LONG[d.getUTCDay()];
          break;
        case MONTH_NAME:
          out += MONTHS[d.getUTCMonth()];
          break;
        case MONTH_LONG:
          out += MONTHS_LONG[d.getUTCMonth()];
          break;
      }
    }
    return out;
  }
}

/** The first `digits` digits of the sub-second part of `ms` (nanosecond resolution). */
function fraction(ms: number, digits: number): string {
  const ns = Math.round((ms - Math.floor(ms / 1000) * 1000) * 1e6);
  return String(Math.min(ns, 999_999_999)).padStart(9, "0").slice(0, digits);
}

function compile(p: string): Segment[] {
  const out: Segment[] = [];
  let lit = "";
  const seg = (code: number, digits = 0) => {
    if (lit) out.push(lit);
    lit = "";
    out.push({ code, digits });
  };
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c !== "%" || i + 1 >= p.length) {
      lit += c;
      continue;
    }
    const n = p[++i];
    switch (n) {
      case "Y":
        seg(Y);
        break;
      case "y":
        seg(YY);
        break;
      case "m":
        seg(MON);
        break;
      case "d":
        seg(DAY);
        break;
      case "e":
        seg(DAY_SP);
        break;
      case "j":
        seg(YDAY);
        break;
      case "H":
        seg(HOUR);
        break;
      case "I":
        seg(HOUR12);
        break;
      case "M":
        seg(MIN);
        break;
      case "S":
        seg(SEC);
        break;
      case "p":
        seg(AMPM);
        break;
      case "s":
        seg(EPOCH);
        break;
      case "f":
        seg(FRAC, 9);
        break;
      case "a":
        seg(WDAY);
        break;
      case "A":
        seg(WDAY_LONG);
        break;
      case "b":
      case "h":
        seg(MONTH_NAME);
        break;
      case "B":
        seg(MONTH_LONG);
        break;
      case "T":
        seg(HOUR);
        lit = ":";
        seg(MIN);
        lit = ":";
        seg(SEC);
        break;
      case "R":
        seg(HOUR);
        lit = ":";
        seg(MIN);
        break;
      case "F":
        seg(Y);
        lit = "-";
        seg(MON);
        lit = "-";
        seg(DAY);
        break;
      case "D":
        seg(MON);
        lit = "/";
        seg(DAY);
        lit = "/";
        seg(YY);
        break;
      case "z":
        lit += "+0000";
        break;
      case "Z":
        lit += "UTC";
        break;
      case "n":
        lit += "\n";
        break;
      case "t":
        lit += "\t";
        break;
      case "%":
        lit += "%";
        break;
      default: {
        if (n >= "1" && n <= "9" && p[i + 1] === "f") {
          seg(FRAC, Number(n));
          i++;
        } else if (n === "E" && p[i + 2] === "S" && p[i + 1] >= "0" && p[i + 1] <= "9") {
          seg(SEC_FRAC, Number(p[i + 1]));
          i += 2;
        } else if (n === "E" && p[i + 1] === "*" && p[i + 2] === "S") {
          seg(SEC_FRAC_ALL);
          i += 2;
        } else {
          lit += "%" + n;
        }
      }
    }
  }
  if (lit) out.push(lit);
  return out;
}

/**
 * Config errors carrying a file position and a field path, and the issue shape later passes use to
 * report problems that only a positioned error can explain.
 */

/** The message for a known Envoy field that nuncio does not implement. */
export const NOT_SUPPORTED = "Field not supported by nuncio";

/** The message for a field that is not part of the Envoy API at that place. */
export const UNKNOWN_FIELD = "Unknown field";

/** A path segment: a map key or a list index. */
export type PathSegment = string | number;

/** One config problem with where it is: 1-based line and column (0 when there is no position). */
export interface ConfigError {
  /** The config file name as given. */
  file: string;
  /** 1-based line, 0 when unknown (e.g. the file could not be read). */
  line: number;
  /** 1-based column, 0 when unknown. */
  column: number;
  /** The field path, e.g. "static_resources.clusters[0].lb_policy" ("" for the document itself). */
  path: string;
  /** What is wrong, capitalized, without a final period. */
  message: string;
}

/** A problem found by a pass after the schema (cross references, snapshot building), positioned later. */
export interface ConfigIssue {
  /** Path from the document root, e.g. ["static_resources", "listeners", 0, "name"]. */
  path: PathSegment[];
  /** What is wrong. */
  message: string;
}

/** Builds a ConfigIssue; used by passes that run on the parsed Bootstrap and need the error positioned. */
export function configError(path: readonly PathSegment[], message: string): ConfigIssue {
  return { path: [...path], message };
}

/** Thrown by a later pass to reject a config with positioned issues; loadConfigText catches it. */
export class ConfigIssueError extends Error {
  /** The issues, each with its path from the document root. */
  readonly issues: ConfigIssue[];

  /** Makes an error from one or more issues; the message is the first issue's. */
  constructor(issues: ConfigIssue[]) {
    super(
      issues.length ? issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join("; ") : "Invalid config",
    );
    this.name = "ConfigIssueError";
    this.issues = issues;
  }
}

const IDENT_RE = /^[A-Za-z_@][\w@-]*$/;

/** Renders a path as `a.b[0].c`; keys that are not identifiers are rendered as `["key"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (IDENT_RE.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Formats an error as `file:line:col: path: message` (omitting the parts it does not have). */
export function formatConfigError(e: ConfigError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.column}` : e.file;
  return e.path ? `${where}: ${e.path}: ${e.message}` : `${where}: ${e.message}`;
}

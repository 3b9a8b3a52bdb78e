/**
 * Process-wide zod settings, imported first by every entry point (main.ts, the worker). Schemas parse a config
 * once per load, so zod's eval-compiled fast path buys nothing here and costs ~7 MB of resident memory. The
 * schemas use zod/mini: a classic schema carries ~50 closures per instance (~3x the heap).
 */
import { z } from "zod/mini";

z.config({ jitless: true });
// zod/mini loads no error locale (classic loads English on import): without it every message is "Invalid input".
z.config(z.locales.en());

/**
 * Process-wide zod settings, imported first by every entry point (main.ts, the worker). Schemas parse a config
 * once per load, so zod's eval-compiled fast path buys nothing here and costs ~7 MB of resident memory.
 */
import { z } from "zod";

z.config({ jitless: true });

/**
 * Process-wide settings of the command line. cli.ts imports this module first, so they apply
 * before any schema is built; the library (index.ts) never imports it and leaves its
 * caller's process alone.
 *
 * zod compiles a parser per object schema with `new Function` (and probes whether it may) on
 * first use. That pays off after thousands of parses; a run checks a few labs and starts cold.
 */
import { config } from "zod";

config({ jitless: true });

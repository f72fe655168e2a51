import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import nunjucks from "nunjucks";

/**
 * The one nunjucks environment. Templates are for shell scripts and prose; they print a flat
 * view model prepared in TypeScript and compute nothing. Found relative to this module
 * (src/render or dist/render), never the working directory.
 */
const TEMPLATE_DIR = fileURLToPath(
  new URL("../../templates/", import.meta.url),
);

/** The nunjucks options every template is compiled with (scripts/bundle.mjs precompiles with these too). */
export const TEMPLATE_OPTIONS = {
  // Output is shell and Markdown, not HTML; quoting is explicit with the `sh` filter.
  autoescape: false,
  // A missing view-model field is a bug: fail instead of printing an empty string into a script.
  throwOnUndefined: true,
  trimBlocks: true,
  lstripBlocks: true,
} as const;

/**
 * Defined only inside the bundle (scripts/bundle.mjs): templates/ compiled at build time, so a
 * run does not lex, parse and compile them again (a large share of a cold start).
 */
declare const __genLabPrecompiledTemplates: Record<string, unknown> | undefined;

/**
 * The templates compiled at build time: in the bundle, or dist/render/templates.compiled.cjs
 * beside the built module (scripts/precompile-templates.mjs). Neither exists when the sources
 * run (tsx): then the templates are compiled from templates/ on first use.
 */
function precompiledTemplates(): Record<string, unknown> | undefined {
  if (typeof __genLabPrecompiledTemplates !== "undefined")
    return __genLabPrecompiledTemplates;
  try {
    return createRequire(import.meta.url)("./templates.compiled.cjs") as Record<
      string,
      unknown
    >;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND")
      return undefined;
    throw e;
  }
}

let env: nunjucks.Environment | undefined;

function environment(): nunjucks.Environment {
  if (env) return env;
  const precompiled = precompiledTemplates();
  env = new nunjucks.Environment(
    precompiled
      ? new nunjucks.PrecompiledLoader(precompiled as never)
      : new nunjucks.FileSystemLoader(TEMPLATE_DIR, { noCache: false }),
    TEMPLATE_OPTIONS,
  );
  env.addFilter("sh", shellQuote);
  return env;
}

/** Quote one word for bash: single quotes, with embedded single quotes closed and escaped. */
export function shellQuote(value: unknown): string {
  const s = String(value);
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Compiled templates by name: looked up once, not through the loaders on every render. */
const compiled = new Map<string, nunjucks.Template>();

export function renderTemplate(name: string, view: object): string {
  let template = compiled.get(name);
  if (!template) {
    template = environment().getTemplate(name, true);
    compiled.set(name, template);
  }
  const text = template.render(view);
  return text.endsWith("\n") ? text : `${text}\n`;
}

/**
 * The YAML writer (src/yaml-out.ts) quotes with its own lean schema. It must write exactly
 * what js-yaml writes with its default schema in compat mode plus the YAML 1.1 number forms
 * and go-yaml v2's numbers and dates
 * (the writer's previous, slower set-up, kept here as the reference, plus the signed
 * leading-dot floats of YAML 1.2 it missed): the same quoting of
 * every string that a YAML 1.1 or 1.2 reader would take for a null, boolean, number, date or
 * merge key, and the same output for everything else.
 */
import fc from "fast-check";
import { DEFAULT_SCHEMA, dump, load, Type } from "js-yaml";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { codePointOrder } from "../src/file.js";
import { toYaml, toYamlOrdered } from "../src/yaml-out.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261123) });

const YAML11_NUMBER =
  /^(?:[-+]?0b[01_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const REFERENCE_SCHEMA = DEFAULT_SCHEMA.extend({
  implicit: [
    new Type("tag:gen-lab,2026:yaml-1.1-number", {
      kind: "scalar",
      resolve: (text: string) => YAML11_NUMBER.test(text),
      construct: (text: string) => text,
    }),
    // The YAML 1.2 core float js-yaml's float type misses: `+.5`.
    new Type("tag:gen-lab,2026:yaml-1.2-signed-dot-float", {
      kind: "scalar",
      resolve: (text: string) =>
        /^[-+]\.[0-9]+(?:[eE][-+]?[0-9]+)?$/.test(text),
      construct: (text: string) => text,
    }),
    // go-yaml v2's numbers (Go's syntax once `_` are removed) and dates with one-digit fields.
    new Type("tag:gen-lab,2026:go-yaml-number-or-date", {
      kind: "scalar",
      resolve: (text: string) => {
        if (!/^[-+0-9]/.test(text)) return false;
        const plain = text.split("_").join("");
        return (
          /^[-+]?(?:0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|[0-9]+)$/.test(
            plain,
          ) ||
          /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(
            plain,
          ) ||
          /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:$|[Tt ])/.test(text)
        );
      },
      construct: (text: string) => text,
    }),
  ],
});
const reference = (value: unknown, sorted: boolean) =>
  dump(value, {
    schema: REFERENCE_SCHEMA,
    noRefs: true,
    lineWidth: -1,
    quotingType: '"',
    ...(sorted ? { sortKeys: codePointOrder } : {}),
  });

/**
 * Strings made of the characters that decide YAML's implicit types, of those that decide
 * whether a string can be written plain (indicators first or last, `: `, ` #`, quotes, flow
 * indicators, line breaks), and a few others.
 */
const tricky = fc.oneof(
  fc.stringMatching(/^[-+._:~<0-9eExXoObBaAfFlLnNsStTuUrRyYiI ]{0,8}$/),
  fc
    .array(fc.constantFrom(..."aZ0_./@%+=~- :#,?'\"&*!|>[]{}`\t\n"), {
      maxLength: 8,
    })
    .map((chars) => chars.join("")),
  fc
    .array(fc.constantFrom("a", "0", ".", "-", " ", ":", "#", ",", "?", "'"), {
      maxLength: 6,
    })
    .map((chars) => chars.join("")),
  fc.constantFrom(
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "true",
    "False",
    "yes",
    "Y",
    "n",
    "on",
    "OFF",
    "<<",
    "0644",
    "0o17",
    "0x_1F",
    "1_000",
    "1:20",
    "-1:20:30.5",
    "_:_",
    "1__:2",
    ".inf",
    "-.Inf",
    ".NaN",
    "1e3",
    "1.5e+3",
    "6.8523015e+5",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "+",
    "-",
    ".",
    "_",
    "0b1010",
    "0b",
    "0x",
    "+0",
    "-0",
    "00",
    "1_",
    "_1",
    "+.5",
    "+.5e-3",
    "- a",
    "a: b",
    "#c",
    " x",
    "x ",
    "a\nb",
    "a\n",
    "\n",
    "\t",
    "é",
    "\u0085",
    "\u2028",
    "'",
    '"',
    "@x",
    "`",
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
);

const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tricky,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.double({ noNaN: false }),
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(tricky, tie("node"), { maxKeys: 4 }),
  ),
})).node;

test("the writer's quoting equals js-yaml's default schema in compat mode, on every string (20000)", () => {
  fc.assert(
    fc.property(tricky, (s) => {
      assert.is(toYamlOrdered({ [s]: s }), reference({ [s]: s }, false));
      assert.is(toYamlOrdered([s]), reference([s], false));
    }),
    { numRuns: 20000 },
  );
});

test("the writer's documents equal js-yaml's default schema in compat mode (5000 documents)", () => {
  fc.assert(
    fc.property(fc.dictionary(tricky, value, { maxKeys: 6 }), (doc) => {
      assert.is(toYamlOrdered(doc), reference(doc, false));
      assert.is(toYaml(doc), reference(doc, true));
    }),
    { numRuns: 5000 },
  );
});

test("strings go-yaml v2 (Kubernetes) reads as numbers or dates are quoted", () => {
  for (const s of [
    "0_x1",
    "0_8",
    "1e_5",
    "1_0e5",
    "0_b1",
    "0_o7",
    "0O17",
    "0X1F",
    "0B1",
    "+_1",
    "2026-1-2",
    "2026-1-2 3:04:05",
  ])
    assert.is(toYamlOrdered({ image: s }), `image: "${s}"\n`, s);
  for (const s of ["_1", "0x", "1.2.3", "v1_0", "2026-1"])
    assert.is(toYamlOrdered({ image: s }), `image: ${s}\n`, s);
});

test("a string that reads back as another type is quoted: it reads back as the same string", () => {
  for (const s of [
    "yes",
    "on",
    "~",
    "0644",
    "1:20",
    "1_000",
    "2001-12-14",
    "<<",
    ".inf",
    "0x_1F",
    "_:_",
    "+.5",
    "+.5e3",
  ]) {
    const text = toYamlOrdered({ k: s });
    assert.match(text, /^k: "/, s);
    assert.equal(load(text), { k: s }, s);
  }
  // Numbers, booleans and null are written as such.
  assert.is(
    toYamlOrdered({ a: 1, b: false, c: null, d: 1.5 }),
    "a: 1\nb: false\nc: null\nd: 1.5\n",
  );
});

test.run();

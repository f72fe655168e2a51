/**
 * The fast reader of plain YAML (src/plain-yaml.ts) against the reference reader (the `yaml`
 * package, as parseLabSource uses it): whenever the fast reader gives data, the reference
 * reader must accept the same text and give the same data, key order and -0/NaN included.
 * Texts: every lab in the repository, and generated YAML of tricky scalars, keys and styles,
 * damaged by random edits so the cases reach the corners of both parsers.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { hasFlowCollectionKey, readPlainYaml } from "../src/plain-yaml.js";
import { parseLabSource } from "../src/source.js";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { ROOT } from "./helpers.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261123) });
/** Cases per generated property; PLAIN_YAML_RUNS=200000 FC_SEED=$RANDOM searches further. */
const RUNS = Number(process.env["PLAIN_YAML_RUNS"] ?? 10_000);

/** Same structure, same key order, same primitives by Object.is (so -0 and NaN count). */
function sameData(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((x, i) => sameData(x, b[i]))
    );
  }
  if (typeof a !== "object" || typeof b !== "object" || !a || !b) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k, i) =>
        k === kb[i] &&
        sameData(
          (a as Record<string, unknown>)[k],
          (b as Record<string, unknown>)[k],
        ),
    )
  );
}

const show = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) =>
    typeof x === "number" && (!Number.isFinite(x) || Object.is(x, -0))
      ? `<number ${Object.is(x, -0) ? "-0" : String(x)}>`
      : x,
  );

/** Undefined when the readers agree (or the fast reader abstains), else what differs. */
function disagreement(text: string): string | undefined {
  const fast = readPlainYaml(text);
  if (fast === undefined) return undefined;
  const reference = parseLabSource("t.yaml", text, { reader: "reference" });
  if (!reference.ok)
    return `fast reader gave ${show(fast)}, reference reader rejects: ${reference.diagnostics[0]?.message}`;
  if (!sameData(fast, reference.source.data))
    return `fast ${show(fast)} vs reference ${show(reference.source.data)}`;
  return undefined;
}

test("every lab file of the repository reads the same, and through the fast reader", () => {
  const files = [
    path.join(ROOT, "labs"),
    path.join(ROOT, "test", "fixtures"),
    path.join(ROOT, "test", "e2e"),
  ].flatMap((dir) =>
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => path.join(dir, f)),
  );
  const texts = [
    ...files.map((f) => fs.readFileSync(f, "utf8")),
    ...syntheticLabs(40).map((l) => l.text),
  ];
  assert.ok(texts.length > 45);
  for (const text of texts) {
    assert.ok(readPlainYaml(text), `fast reader abstains on:\n${text}`);
    assert.is(disagreement(text), undefined);
  }
});

test("the fast reader abstains where the readers differ", () => {
  const abstains = [
    "a: !!str 1\n", // tags
    "%YAML 1.1\n---\na: yes\n", // directives
    "a: &x [1]\nb: *x\n", // anchors and aliases
    'a: {"k":&x [1], "j": *x}\n',
    "? [a, b]\n: c\n", // complex keys
    "[a]: b\n",
    "{a: 1}: b\n",
    "a: {b, [c]}\n", // a flow list as a key without a value
    "a: {b, {c: d}}\n",
    "a: {b: '}', [c]}\n",
    "a: {[b] # c\n  : d}\n",
    "a:\nb: 1\n", // a value not given
    "a:\n#c\n  b\nd: x\n",
    'a: "\\U80000066"\n', // escapes
    'a: "x\\\n\n  - y"\n',
    "a:\n\n# c\n   b\nd: x\n",
    'a: "b"#c\n', // comment not separated
    "--- {a: 1}\n",
    `${"k".repeat(1100)}: v\n`,
    "~: a\n", // keys that are not names
    "null: a\n",
    "1: a\n",
    "<<: {a: 1}\n",
    "__proto__: {a: 1}\n",
    "a: {.inf: b}\n", // keys js-yaml turns into the strings Infinity and NaN
    "a: {.NaN: b}\n",
    "+.inf: a\n",
    "1e400: a\n",
    "- a\n", // not a mapping
    "a: 1\na: 2\n", // duplicate keys
    "a: \u0007\n",
  ];
  for (const text of abstains)
    assert.is(readPlainYaml(text), undefined, JSON.stringify(text));
});

test("YAML 1.2 core scalars resolve as the reference reader resolves them", () => {
  const scalars = [
    ...[
      "~",
      "null",
      "Null",
      "NULL",
      "nULL",
      "",
      "true",
      "True",
      "TRUE",
      "tRUE",
    ],
    ...["false", "yes", "no", "on", "off", "y", "0", "-0", "+0", "007", "-12"],
    ...[
      "0o17",
      "0O17",
      "-0o17",
      "0x1F",
      "0X1F",
      "+0x1",
      "0b101",
      "1_000",
      "1.",
    ],
    ...[
      ".5",
      "-.5",
      "+1.50",
      "1e3",
      "1E+3",
      "1e",
      "e3",
      ".e3",
      "1.5e-3",
      ".inf",
    ],
    ...["-.Inf", "+.INF", ".nan", ".NaN", "-.nan", "NaN", "Infinity", "12:30"],
    ...["2001-12-14", "1.0", "9007199254740993", "1e400", "-1e400", "0x"],
  ];
  for (const s of scalars) {
    // A null mapping value is left to the reference reader; in a list the fast one answers.
    assert.ok(s === "" || readPlainYaml(`a: [${s}]\n`), `abstains on [${s}]`);
    for (const text of [`a: ${s}\n`, `a: [${s}]\n`, `a: {b: ${s}}\n`])
      assert.is(disagreement(text), undefined, text);
  }
});

// ------------------------------------------------------------------- generated YAML, damaged

const SCALARS = [
  ...["a", "x y", "yes", "~", "null", "Null", "true", "False", "0", "-0", "+1"],
  ...[
    "0o17",
    "0x1F",
    "0b1",
    "1_000",
    "1.",
    ".5",
    "1e3",
    "-.inf",
    ".NaN",
    "12:30",
  ],
  ...["2001-12-14", "- a", ": a", "a: b", "a:b", "a #b", "a#b", "#x", "x\ny"],
  ...[
    "x\n\ny",
    " x",
    "x ",
    "\tx",
    "@x",
    "`x",
    "%x",
    "&x",
    "*x",
    "!x",
    "|",
    ">",
  ],
  ...["[x]", "{x}", ",", "?x", "? x", "é", "x\u2028y", "x\u0085y", "\ufeffx"],
  ...["a\\nb", "\\", "'", '"', "", "  ", "https://h/a?b=1&c=2", "0 */4 * * *"],
  ...["-", "--- a", "...", "a\r\nb", "😀", "\u200b"],
];
const NAME_KEYS = ["version", "a", "b_c", "D-e", "name", "extra", "x1", "True"];
const ODD_KEYS = [
  ...["null", "~", "true", "1", "0x10", "<<", "__proto__", "a b", "a.b", ""],
  ...["-", "a:b", "#", "é", "?", "[a]", "{a: 1}", "*a", "&a b"],
];
/** Mostly names, so that many documents reach the fast reader. */
const key = fc.oneof(
  { arbitrary: fc.constantFrom(...NAME_KEYS), weight: 12 },
  { arbitrary: fc.constantFrom(...ODD_KEYS), weight: 1 },
);

type Tree = string | Tree[] | [string, Tree][];

const BENIGN = [
  "foo-1",
  "10.0.0.0/8",
  "https://h.example.com/x",
  "t3.medium",
  "x y z",
  "42",
  "1.5",
];
const scalarText = fc.tuple(
  fc.oneof(
    fc.constantFrom(...SCALARS),
    fc.string({ maxLength: 6, unit: "binary" }),
  ),
  fc.constantFrom("plain", "single", "double", "literal", "folded"),
  fc.constantFrom("", "-", "+"),
);

/** A node as YAML text at `indent`, in block or flow style. */
function render(
  node: Tree,
  indent: number,
  style: { step: number; flow: boolean },
  scalar: (s: string, indent: number) => string,
): string {
  const pad = " ".repeat(indent);
  if (typeof node === "string") return scalar(node, indent);
  const isMap =
    node.length > 0 &&
    Array.isArray(node[0]) &&
    node[0].length === 2 &&
    typeof node[0][0] === "string" &&
    (node as unknown[]).every(
      (e) => Array.isArray(e) && e.length === 2 && typeof e[0] === "string",
    );
  if (style.flow) {
    if (isMap)
      return `{${(node as [string, Tree][]).map(([k, v]) => `${k}: ${render(v, indent, style, scalar)}`).join(", ")}}`;
    return `[${(node as Tree[]).map((v) => render(v, indent, style, scalar)).join(", ")}]`;
  }
  if (node.length === 0) return isMap ? "{}" : "[]";
  const inner = indent + style.step;
  if (isMap)
    return (node as [string, Tree][])
      .map(([k, v]) => {
        const value = render(v, inner, style, scalar);
        return typeof v === "string" ||
          value.startsWith("{") ||
          value.startsWith("[")
          ? `\n${pad}${k}: ${value}`
          : `\n${pad}${k}:${value}`;
      })
      .join("");
  return (node as Tree[])
    .map((v) => {
      const value = render(v, inner, style, scalar);
      return `\n${pad}- ${value.replace(/^\n */, "")}`;
    })
    .join("");
}

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(fc.constantFrom(...SCALARS), fc.constantFrom(...BENIGN)),
    fc.array(tie("node"), { maxLength: 3 }),
    fc.array(fc.tuple(key, tie("node")), {
      minLength: 1,
      maxLength: 4,
    }),
  ),
})).node;

const EDIT_CHARS = [..."!&*?%#:-[]{},'\"|> \t\n\r\\~@`.0"];

const document = fc
  .record({
    root: fc.array(fc.tuple(key, tree), {
      minLength: 1,
      maxLength: 5,
    }),
    step: fc.integer({ min: 1, max: 4 }),
    flow: fc.boolean(),
    quoting: fc.array(scalarText, { minLength: 1, maxLength: 8 }),
    marker: fc.constantFrom("", "---\n", "--- # c\n"),
    comment: fc.constantFrom("", " # c", "#c"),
    crlf: fc.boolean(),
    noise: fc.array(
      fc.tuple(fc.nat(), fc.constantFrom("", "# c", "  # c", "   ", " ")),
      { maxLength: 2 },
    ),
    edits: fc.oneof(
      fc.constant([]),
      fc.array(
        fc.tuple(fc.nat(), fc.constantFrom(...EDIT_CHARS), fc.boolean()),
        { minLength: 1, maxLength: 2 },
      ),
    ),
  })
  .map((d) => {
    let n = 0;
    const scalar = (s: string, indent: number) => {
      const [raw, how, chomp] = d.quoting[n++ % d.quoting.length]!;
      const text = s === "" ? raw : s;
      const pad = " ".repeat(indent + d.step);
      switch (how) {
        case "single":
          return `'${text.replace(/'/g, "''")}'`;
        case "double":
          return JSON.stringify(text);
        case "literal":
        case "folded":
          if (d.flow) return JSON.stringify(text);
          return `${how === "literal" ? "|" : ">"}${chomp}\n${text
            .split("\n")
            .map((l) => pad + l)
            .join("\n")}`;
        default:
          return text + d.comment;
      }
    };
    let text =
      d.marker +
      render(d.root, 0, { step: d.step, flow: false }, scalar).replace(
        /^\n/,
        "",
      ) +
      "\n";
    if (d.flow)
      text =
        d.marker +
        d.root
          .map(
            ([k, v]) =>
              `${k}: ${render(v, 0, { step: d.step, flow: true }, scalar)}`,
          )
          .join("\n") +
        "\n";
    for (const [at, line] of d.noise) {
      const lines = text.split("\n");
      const i = at % lines.length;
      text = [...lines.slice(0, i), line, ...lines.slice(i)].join("\n");
    }
    for (const [at, ch, insert] of d.edits) {
      const i = at % (text.length + 1);
      text = insert
        ? text.slice(0, i) + ch + text.slice(i)
        : text.slice(0, i) + ch + text.slice(i + 1);
    }
    return d.crlf ? text.replace(/\n/g, "\r\n") : text;
  });

/** Lines of YAML-like tokens at random indents: continuations, misplaced entries, stray indicators. */
const lineSoup = fc
  .array(
    fc.record({
      indent: fc.constantFrom(0, 0, 1, 2, 2, 3, 4),
      entry: fc.constantFrom("", "", "", "- ", "- - ", "-  "),
      key: fc.option(key, { nil: undefined, freq: 4 }),
      value: fc.oneof(
        {
          arbitrary: fc.constantFrom(...BENIGN, "[a, b]", "{a: b}"),
          weight: 4,
        },
        { arbitrary: fc.constantFrom(...SCALARS, "[", "{", ""), weight: 2 },
      ),
      quote: fc.constantFrom("", "", "'", '"'),
      comment: fc.constantFrom("", "", " # c"),
    }),
    { minLength: 1, maxLength: 6 },
  )
  .map(
    (lines) =>
      lines
        .map(({ indent, entry, key, value, quote, comment }) => {
          const v =
            quote === '"'
              ? JSON.stringify(value)
              : quote
                ? `'${value.replace(/'/g, "''")}'`
                : value;
          return `${" ".repeat(indent)}${entry}${key === undefined ? "" : `${key}: `}${v}${comment}`;
        })
        .join("\n") + "\n",
  );

/**
 * Where the fast reader answers on texts of `texts`, it agrees with the reference reader; and
 * it answers often enough (RUNS / 25 times) that the property proves something.
 */
function assertAgreement(texts: fc.Arbitrary<string>): void {
  let answered = 0;
  fc.assert(
    fc.property(texts, (text) => {
      if (readPlainYaml(text) !== undefined) answered++;
      const problem = disagreement(text);
      if (problem) throw new Error(`${JSON.stringify(text)}\n${problem}`);
    }),
    { numRuns: RUNS },
  );
  assert.ok(
    answered > RUNS / 25,
    `the fast reader answered only ${answered} times`,
  );
}

test("YAML-like line soup: where the fast reader answers, it agrees", () => {
  assertAgreement(lineSoup);
});

test("generated and damaged YAML: where the fast reader answers, it agrees", () => {
  assertAgreement(document);
});

/** The pattern hasFlowCollectionKey decides in one pass; it rescans comment lines per bracket. */
const FLOW_COLLECTION_KEY = /[\]}]\s*(?:#[^\n]*\n\s*)*(?:#[^\n]*)?:/;

test("hasFlowCollectionKey decides the same language as its pattern", () => {
  const piece = fc.constantFrom(
    "]",
    "}",
    ":",
    "#",
    "\n",
    " ",
    "\t",
    "\r",
    "\u2028",
    "\u00a0",
    "a",
    "[",
    "-",
    "# x",
    "#:",
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
      const text = pieces.join("");
      assert.is(
        hasFlowCollectionKey(text),
        FLOW_COLLECTION_KEY.test(text),
        JSON.stringify(text),
      );
    }),
    { numRuns: RUNS * 5 },
  );
  for (const text of [
    "a: [b]\n",
    "? [a]\n: b\n",
    "[a]\n# c\n  # d\n:",
    "{a: 1} # note: see\n",
    "]#\n",
    "]\n#",
    "#]\n".repeat(3),
  ])
    assert.is(hasFlowCollectionKey(text), FLOW_COLLECTION_KEY.test(text), text);
});

test("hasFlowCollectionKey is linear: 200,000 comment lines of brackets", () => {
  const text = `a: b\n${"#]\n#}\n".repeat(100_000)}`;
  assert.is(hasFlowCollectionKey(text), false);
  assert.is(hasFlowCollectionKey(`${text}:`), true);
});

test.run();

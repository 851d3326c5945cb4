// Solidity mutation operators, applied to the source text. Each mutant changes one place in one
// file; comments and string literals are masked first so they are never mutated.

export interface Mutant {
  /** Stable id: `<file>:<line>:<col>:<operator>`; the fixed CI sample names mutants by it. */
  id: string;
  file: string;
  operator: string;
  line: number;
  col: number;
  /** Character range replaced in the original source. */
  start: number;
  end: number;
  original: string;
  replacement: string;
}

/** The source with comments and string literals replaced by spaces (same length, same offsets). */
export function mask(src: string): string {
  const out = src.split("");
  let i = 0;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  while (i < src.length) {
    if (src.startsWith("//", i)) {
      const end = src.indexOf("\n", i);
      const stop = end === -1 ? src.length : end;
      blank(i, stop);
      i = stop;
    } else if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      const stop = end === -1 ? src.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (src[i] === '"' || src[i] === "'") {
      const q = src[i];
      let j = i + 1;
      while (j < src.length && src[j] !== q) j += src[j] === "\\" ? 2 : 1;
      blank(i + 1, j);
      i = j + 1;
    } else {
      i++;
    }
  }
  return out.join("");
}

/** Offset of the parenthesis closing the one at `open`, in masked text. */
function closing(m: string, open: number): number {
  let depth = 0;
  for (let i = open; i < m.length; i++) {
    if (m[i] === "(") depth++;
    else if (m[i] === ")" && --depth === 0) return i;
  }
  return -1;
}

/** Offset of the first top-level comma between `open` and its closing parenthesis, or -1. */
function topComma(m: string, open: number, close: number): number {
  let depth = 0;
  for (let i = open + 1; i < close; i++) {
    const c = m[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) return i;
  }
  return -1;
}

type Found = { operator: string; start: number; end: number; replacement: string };

const SWAPS: Array<[string, RegExp, Record<string, string>]> = [
  // relational: < <= > >= == != ; not << >> => -> <<= >>=
  [
    "relational",
    /(?<![<>=!])(<=|>=|==|!=|<|>)(?![<>=])/g,
    { "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==" },
  ],
  // arithmetic, binary with spaces (the formatter writes them so), and compound assignment
  ["arithmetic", / (\+|-|\*|\/|%) /g, { "+": "-", "-": "+", "*": "/", "/": "*", "%": "*" }],
  ["assign-arith", / (\+=|-=|\*=|\/=)/g, { "+=": "-=", "-=": "+=", "*=": "/=", "/=": "*=" }],
  ["logical", /(&&|\|\|)/g, { "&&": "||", "||": "&&" }],
  ["boolean", /\b(true|false)\b/g, { true: "false", false: "true" }],
  ["increment", /(\+\+|--)/g, { "++": "--", "--": "++" }],
];

/** Code that is not executable logic: pragmas, imports, declarations of errors/events. */
function skippedLine(line: string): boolean {
  return /^\s*(pragma|import|error|event|\/\/|\*)\b/.test(line) || /^\s*(error|event) /.test(line);
}

export function mutantsOf(file: string, src: string): Mutant[] {
  const m = mask(src);
  const found: Found[] = [];
  const lines = m.split("\n");
  const lineStart: number[] = [];
  let off = 0;
  for (const l of lines) {
    lineStart.push(off);
    off += l.length + 1;
  }
  const lineOf = (pos: number) => {
    let lo = 0;
    let hi = lineStart.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStart[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const inSkipped = (pos: number) => skippedLine(lines[lineOf(pos)]!);

  for (const [operator, re, table] of SWAPS) {
    for (const hit of m.matchAll(re)) {
      const tok = hit[1]!;
      const start = hit.index + hit[0].indexOf(tok);
      if (inSkipped(start)) continue;
      // `<`/`>` inside `mapping(a => b)` are excluded by the lookarounds; generic-looking `<`
      // does not occur in Solidity.
      found.push({ operator, start, end: start + tok.length, replacement: table[tok]! });
    }
  }

  // integer constants off by one (not in pragmas, not hex, not array sizes of declarations)
  for (const hit of m.matchAll(/(?<![\w.])(\d+)(?![\w.])/g)) {
    const start = hit.index;
    if (inSkipped(start)) continue;
    const text = hit[1]!;
    if (/^\s*uint\d*\[/.test(m.slice(start - 10, start))) continue;
    found.push({
      operator: "constant",
      start,
      end: start + text.length,
      replacement: (BigInt(text) + 1n).toString(),
    });
  }

  // `if (cond) revert ...` and `require(cond, ...)`: the guard never fires
  for (const hit of m.matchAll(/\bif\s*\(/g)) {
    const open = hit.index + hit[0].length - 1;
    const close = closing(m, open);
    if (close < 0) continue;
    const after = m.slice(close + 1).trimStart();
    if (!after.startsWith("revert") && !after.startsWith("{\n") && !after.startsWith("{")) continue;
    found.push({
      operator: after.startsWith("revert") ? "drop-revert" : "if-false",
      start: open + 1,
      end: close,
      replacement: "false",
    });
  }
  for (const hit of m.matchAll(/\brequire\s*\(/g)) {
    const open = hit.index + hit[0].length - 1;
    const close = closing(m, open);
    const comma = close < 0 ? -1 : topComma(m, open, close);
    const end = comma < 0 ? close : comma;
    if (end < 0) continue;
    found.push({ operator: "drop-require", start: open + 1, end, replacement: "true" });
  }

  // delete a single-line assignment statement `a.b[c] = x;` / `a += x;` (not a declaration)
  const assign =
    /^(\s*)([A-Za-z_$][\w$]*(?:\.[\w$]+|\[[^\]\n]*\])*)\s*(=|\+=|-=|\*=|\|=|&=)\s[^;\n]*;\s*$/;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const a = assign.exec(l);
    if (!a) continue;
    const start = lineStart[i]! + a[1]!.length;
    const end = lineStart[i]! + l.trimEnd().length;
    found.push({ operator: "delete-assignment", start, end, replacement: "" });
  }
  // delete `x++;` / `++x;` / `delete x;` statements
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const s = /^(\s*)((?:\+\+|--)?[\w$.[\]]+(?:\+\+|--)?;|delete [^;\n]+;)\s*$/.exec(l);
    if (!s || !/(\+\+|--|^delete )/.test(s[2]!)) continue;
    const start = lineStart[i]! + s[1]!.length;
    found.push({ operator: "delete-statement", start, end: start + s[2]!.length, replacement: "" });
  }

  found.sort((a, b) => a.start - b.start || a.operator.localeCompare(b.operator));
  const seen = new Set<string>();
  const out: Mutant[] = [];
  for (const f of found) {
    const line = lineOf(f.start);
    const col = f.start - lineStart[line]!;
    const id = `${file}:${line + 1}:${col + 1}:${f.operator}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({
      id,
      file,
      operator: f.operator,
      line: line + 1,
      col: col + 1,
      start: f.start,
      end: f.end,
      original: src.slice(f.start, f.end),
      replacement: f.replacement,
    });
  }
  return out;
}

export function apply(src: string, mu: Mutant): string {
  return src.slice(0, mu.start) + mu.replacement + src.slice(mu.end);
}

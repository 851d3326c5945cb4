/**
 * Calls a Merkle backend (the raw addon, nativeBackend or fallbackBackend) in a child process, so
 * that a call which crashes the process (a regression of the argument guard) is reported by the
 * parent as a failed test instead of killing mocha. Run as
 * `node --import tsx test/native/backend-child.ts <results file>` with `{ target, calls }` as JSON
 * on stdin; it appends one JSON `Outcome` line per call to the file, each before the next call
 * starts (a file, not stdout: a pipe the parent has not drained yet would refuse a synchronous
 * write with EAGAIN). Imported (by the tests,
 * or by mocha when `hardhat test` loads every file), it only exports the codec and `runCalls`.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export type Target = "raw" | "native" | "fallback";

/** A JS value that JSON cannot carry, described. */
export type Arg =
  /** A number, as `String(n)` ("-0" for negative zero): NaN and the infinities survive. */
  | { t: "number"; v: string }
  /** A Uint8Array of `n` bytes, byte i = (fill + 31 i) & 255 (zero when fill is absent, and then
   * never touched: large zero inputs cost no memory); `offset` bytes before it in its buffer. */
  | { t: "bytes"; n: number; fill?: number; offset?: number }
  | { t: "buffer"; n: number; fill: number }
  /** A Uint8Array subclass whose `length` getter lies (says `length`). */
  | { t: "lying"; n: number; length: number }
  | {
      t: "view";
      kind: "Uint16Array" | "Int8Array" | "Uint8ClampedArray" | "Float64Array" | "DataView";
      bytes: number;
    }
  | { t: "bigint"; v: string }
  | { t: "string"; v: string }
  | { t: "boolean"; v: boolean }
  | { t: "boxed"; v: number }
  | { t: "array"; v: number[] }
  | { t: "object" }
  | { t: "null" }
  | { t: "undefined" };

export interface Call {
  fn: "keccak256" | "build";
  args: Arg[];
}

export type Outcome =
  | { threw: string; message: string }
  | { returned: string }
  /** The process died during this call (only made by `runCalls`, in the parent). */
  | { crashed: string };

export const num = (v: number): Arg => ({ t: "number", v: Object.is(v, -0) ? "-0" : String(v) });
export const bytes = (n: number, fill?: number, offset?: number): Arg =>
  fill === undefined && offset === undefined
    ? { t: "bytes", n }
    : { t: "bytes", n, ...(fill === undefined ? {} : { fill }), ...(offset ? { offset } : {}) };

function pattern(n: number, fill: number, into: Uint8Array): void {
  for (let i = 0; i < n; i++) into[i] = (fill + 31 * i) & 255;
}

export function decode(arg: Arg): unknown {
  switch (arg.t) {
    case "number":
      return Number(arg.v);
    case "bytes": {
      const offset = arg.offset ?? 0;
      const view = new Uint8Array(offset + arg.n).subarray(offset);
      if (arg.fill !== undefined) pattern(arg.n, arg.fill, view);
      return view;
    }
    case "buffer": {
      const buffer = Buffer.alloc(arg.n);
      pattern(arg.n, arg.fill, buffer);
      return buffer;
    }
    case "lying": {
      const fake = arg.length;
      class Lying extends Uint8Array {
        override get length(): number {
          return fake;
        }
      }
      const view = new Lying(arg.n);
      pattern(arg.n, 7, view);
      return view;
    }
    case "view": {
      const buffer = new ArrayBuffer(arg.bytes);
      if (arg.kind === "DataView") return new DataView(buffer);
      return new globalThis[arg.kind](buffer);
    }
    case "bigint":
      return BigInt(arg.v);
    case "string":
    case "boolean":
      return arg.v;
    case "boxed":
      return new Number(arg.v);
    case "array":
      return [...arg.v];
    case "object":
      return {};
    case "null":
      return null;
    case "undefined":
      return undefined;
  }
}

interface Functions {
  keccak256(...args: unknown[]): Uint8Array;
  build(...args: unknown[]): { tree: Uint8Array; treeIndex: Uint32Array };
}

async function load(target: Target): Promise<Functions> {
  if (target === "raw") {
    const require = createRequire(import.meta.url);
    return require("../../native/build/Release/opg_merkle.node") as Functions;
  }
  const { fallbackBackend, nativeBackend } = await import("../../native/index.js");
  const backend = target === "native" ? nativeBackend : fallbackBackend;
  if (backend === null) throw new Error("native addon not built");
  return backend;
}

function call(functions: Functions, { fn, args }: Call): Outcome {
  const values = args.map(decode);
  try {
    if (fn === "keccak256")
      return { returned: Buffer.from(functions.keccak256(...values)).toString("hex") };
    const { tree, treeIndex } = functions.build(...values);
    return { returned: `${Buffer.from(tree).toString("hex")}/${[...treeIndex].join(",")}` };
  } catch (error) {
    if (!(error instanceof Error)) return { threw: typeof error, message: String(error) };
    return { threw: error.constructor.name, message: error.message };
  }
}

const CHILD = fileURLToPath(import.meta.url);
const READY = JSON.stringify({ ready: true });

/**
 * Runs `calls` on `target` in child processes and returns one outcome per call. When the process
 * dies during a call, that call's outcome is `{ crashed }` (signal or exit code, and the end of
 * stderr) and a new child carries on with the next call. `virtualMemoryKb` runs the children under
 * `ulimit -v` (Linux), so that large allocations fail.
 */
export async function runCalls(
  target: Target,
  calls: Call[],
  virtualMemoryKb?: number,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  while (outcomes.length < calls.length) {
    const rest = calls.slice(outcomes.length);
    const { ready, lines, died } = await runChild(target, rest, virtualMemoryKb);
    // A child that could not even load the target fails every call left, once.
    if (!ready) return [...outcomes, ...rest.map(() => ({ crashed: `did not start: ${died}` }))];
    outcomes.push(...lines.slice(0, rest.length));
    if (outcomes.length < calls.length) outcomes.push({ crashed: died });
  }
  return outcomes;
}

function runChild(
  target: Target,
  calls: Call[],
  virtualMemoryKb: number | undefined,
): Promise<{ ready: boolean; lines: Outcome[]; died: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "opg-backend-child-"));
  const results = path.join(dir, "outcomes.jsonl");
  const node = ["--import", "tsx", CHILD, results];
  const [command, args] =
    virtualMemoryKb === undefined
      ? [process.execPath, node]
      : [
          "bash",
          // Without the trap handler, WebAssembly (tsx's lexer) does not reserve its ~10 GiB of
          // guard pages, which would fail under the limit.
          ["-c", `ulimit -v ${virtualMemoryKb} && exec "$@"`, "bash", process.execPath].concat([
            "--disable-wasm-trap-handler",
            ...node,
          ]),
        ];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      let written = "";
      try {
        written = readFileSync(results, "utf8");
      } catch {
        // never created: the child died before loading the target
      }
      rmSync(dir, { recursive: true, force: true });
      const [first, ...rest] = written.split("\n").filter((line) => line.startsWith("{"));
      const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
      resolve({
        ready: first === READY,
        lines: rest.map((line) => JSON.parse(line) as Outcome),
        died: `${how}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
      });
    });
    child.stdin.end(JSON.stringify({ target, calls }));
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { target, calls } = JSON.parse(readFileSync(0, "utf8")) as {
    target: Target;
    calls: Call[];
  };
  const functions = await load(target);
  const fd = openSync(process.argv[2]!, "a");
  writeSync(fd, READY + "\n");
  for (const c of calls) writeSync(fd, JSON.stringify(call(functions, c)) + "\n");
  closeSync(fd);
}

import { existsSync } from "node:fs";

import { expect } from "chai";
import { keccak256 as ethersKeccak } from "ethers";
import fc from "fast-check";

import {
  MAX_ENCODED_STRIDE,
  MAX_LEAVES,
  fallbackBackend,
  nativeBackend,
} from "../../native/index.js";
import { bytes, decode, num, runCalls } from "./backend-child.js";
import type { Arg, Call, Outcome, Target } from "./backend-child.js";

// The raw binding (native/build/Release/opg_merkle.node, called without the wrapper's checks),
// nativeBackend and fallbackBackend each get every call below in a child process: a call that
// crashes the process shows up as `{ crashed: "signal SIGSEGV: ..." }` in a failed test, and mocha
// carries on. Set OPG_REQUIRE_NATIVE=1 (CI) to fail when the addon is missing.
const ADDON = new URL("../../native/build/Release/opg_merkle.node", import.meta.url);
const available: Record<Target, boolean> = {
  raw: existsSync(ADDON),
  native: nativeBackend !== null,
  fallback: true,
};
const TARGETS: Target[] = ["raw", "native", "fallback"];

type Refusal = { threw: string; message: string };
const typeError = (message: string): Refusal => ({ threw: "TypeError", message });
const rangeError = (message: string): Refusal => ({ threw: "RangeError", message });
const KECCAK_TYPE = typeError("keccak256: data must be a Uint8Array");
const MODE_RANGE = rangeError("build: mode must be 0 (AddressUint256), 1 (Encoded) or 2 (Hashed)");
const STRIDE_0 = rangeError("build: stride must be 52 for mode 0 (AddressUint256)");
const STRIDE_1 = rangeError(
  `build: stride must be a multiple of 32 from 32 to ${MAX_ENCODED_STRIDE} for mode 1 (Encoded)`,
);
const STRIDE_2 = rangeError("build: stride must be 32 for mode 2 (Hashed)");
const COUNT_RANGE = rangeError(`build: count must be from 1 to ${MAX_LEAVES}`);
const length = (has: number, count: number, stride: number): Refusal =>
  rangeError(
    `build: input has ${has} bytes, expected count * stride = ${count} * ${stride} = ${count * stride}`,
  );

/** What a valid call returns, computed here (keccak: ethers; build: the fallback, in process). */
function expected(call: Call): Outcome {
  const values = call.args.map(decode) as [Uint8Array, 0 | 1 | 2, number, number];
  // A copy made by %TypedArray% reads the real bytes, whatever a subclass's `length` says.
  if (call.fn === "keccak256")
    return { returned: ethersKeccak(new Uint8Array(values[0])).slice(2) };
  const { tree, treeIndex } = fallbackBackend.build(...values);
  return { returned: `${Buffer.from(tree).toString("hex")}/${[...treeIndex].join(",")}` };
}

const RETURNS = "returns" as const;
const k = (...args: Arg[]): Call => ({ fn: "keccak256", args });
const b = (...args: Arg[]): Call => ({ fn: "build", args });
const u = { t: "undefined" } as const;
/** build(input, 2, 32, 2) with one argument replaced. */
const hashed = (at: 0 | 1 | 2 | 3, arg: Arg): Call => {
  const args = [bytes(64, 1), num(2), num(32), num(2)];
  args[at] = arg;
  return b(...args);
};

const NOT_UINT8ARRAYS: Array<[string, Arg]> = [
  ["undefined", u],
  ["null", { t: "null" }],
  ["a hex string", { t: "string", v: "0x1234" }],
  ["an array of bytes", { t: "array", v: [1, 2, 3, 4] }],
  ["a Uint16Array", { t: "view", kind: "Uint16Array", bytes: 64 }],
  ["an Int8Array", { t: "view", kind: "Int8Array", bytes: 64 }],
  ["a Uint8ClampedArray", { t: "view", kind: "Uint8ClampedArray", bytes: 64 }],
  ["a Float64Array", { t: "view", kind: "Float64Array", bytes: 64 }],
  ["a DataView", { t: "view", kind: "DataView", bytes: 64 }],
  ["a plain object", { t: "object" }],
];
const NOT_NUMBERS: Array<[string, Arg]> = [
  ["undefined", u],
  ["a numeric string", { t: "string", v: "2" }],
  ["a bigint", { t: "bigint", v: "2" }],
  ["null", { t: "null" }],
  ["a boolean", { t: "boolean", v: true }],
  ["a Number object", { t: "boxed", v: 2 }],
];
const NOT_INTEGERS: number[] = [NaN, Infinity, -Infinity, 1.5, 2 + 2 ** -51, 2 ** 51 + 0.5];

/** The TypeErrors of integer argument `name`, at position `at` of build(input, 2, 32, 2). */
function typeCases(
  name: "mode" | "stride" | "count",
  at: 1 | 2 | 3,
  moreNonIntegers: number[] = [],
): Array<[string, Call, Refusal]> {
  return [
    ...NOT_NUMBERS.map(([what, arg]): [string, Call, Refusal] => [
      `build(${name} = ${what})`,
      hashed(at, arg),
      typeError(`build: ${name} must be a number`),
    ]),
    ...[...NOT_INTEGERS, ...moreNonIntegers].map((v): [string, Call, Refusal] => [
      `build(${name} = ${v})`,
      hashed(at, num(v)),
      typeError(`build: ${name} must be an integer`),
    ]),
  ];
}

/** [what, call, outcome]: the outcome every target must give. */
const CASES: Array<[string, Call, Refusal | typeof RETURNS]> = [
  // keccak256(data)
  ["keccak256() with no argument", k(), KECCAK_TYPE],
  ...NOT_UINT8ARRAYS.map(([what, arg]): [string, Call, Refusal] => [
    `keccak256(${what})`,
    k(arg),
    KECCAK_TYPE,
  ]),
  ["keccak256 of a boxed number", k({ t: "boxed", v: 1 }), KECCAK_TYPE],
  ["keccak256 of 0 bytes", k(bytes(0)), RETURNS],
  ["keccak256 of 3 bytes", k(bytes(3, 5)), RETURNS],
  ["keccak256 of 137 bytes at offset 3 of their buffer", k(bytes(137, 9, 3)), RETURNS],
  ["keccak256 of a 136-byte Buffer", k({ t: "buffer", n: 136, fill: 1 }), RETURNS],
  [
    "keccak256 of a Uint8Array subclass whose length lies",
    k({ t: "lying", n: 40, length: 0 }),
    RETURNS,
  ],

  // build(input, ...)
  ["build() with no argument", b(), typeError("build: input must be a Uint8Array")],
  ...NOT_UINT8ARRAYS.map(([what, arg]): [string, Call, Refusal] => [
    `build(input = ${what})`,
    hashed(0, arg),
    typeError("build: input must be a Uint8Array"),
  ]),
  // mode
  ["build(input) without a mode", b(bytes(64, 1)), typeError("build: mode must be a number")],
  ...typeCases("mode", 1),
  // 2^32 + 2 used to be read as 2 (Uint32Value), 2^53 and 2^62 as other integers.
  ...[-1, 3, -(2 ** 31), 2 ** 32, 2 ** 32 + 2, 2 ** 53, 2 ** 62].map(
    (v): [string, Call, Refusal] => [`build(mode = ${v})`, hashed(1, num(v)), MODE_RANGE],
  ),
  // stride
  [
    "build(input, mode) without a stride",
    b(bytes(64, 1), num(2)),
    typeError("build: stride must be a number"),
  ],
  ...typeCases("stride", 2, [32.5]),
  ...[0, -32, 64, 2 ** 32 + 32, 2 ** 62].map((v): [string, Call, Refusal] => [
    `build(mode 2, stride = ${v})`,
    hashed(2, num(v)),
    STRIDE_2,
  ]),
  ...[32, 0, 2 ** 62 + 52].map((v): [string, Call, Refusal] => [
    `build(mode 0, stride = ${v})`,
    b(bytes(104, 1), num(0), num(v), num(2)),
    STRIDE_0,
  ]),
  // The issue's case: 2^62 * 4 wrapped to 0 == the input's length, and the build read out of bounds.
  ["build(new Uint8Array(0), 1, 2**62, 4)", b(bytes(0), num(1), num(2 ** 62), num(4)), STRIDE_1],
  ...[0, 16, 48, -32, MAX_ENCODED_STRIDE + 32, 2 ** 32 + 32, 2 ** 64, -(2 ** 62)].map(
    (v): [string, Call, Refusal] => [
      `build(mode 1, stride = ${v})`,
      b(bytes(0), num(1), num(v), num(4)),
      STRIDE_1,
    ],
  ),
  [
    "build(mode 1, stride = MAX_ENCODED_STRIDE) passes the stride check",
    b(bytes(0), num(1), num(MAX_ENCODED_STRIDE), num(1)),
    length(0, 1, MAX_ENCODED_STRIDE),
  ],
  // count
  [
    "build(input, mode, stride) without a count",
    b(bytes(64, 1), num(2), num(32)),
    typeError("build: count must be a number"),
  ],
  ...typeCases("count", 3),
  // 32 * 2^59 = 2^64 wrapped to 0 as well.
  ...[0, -0, -1, MAX_LEAVES + 1, 2 ** 31, 2 ** 32 + 2, 2 ** 53, 2 ** 59, 2 ** 62].map(
    (v): [string, Call, Refusal] => [
      `build(count = ${Object.is(v, -0) ? "-0" : v})`,
      b(bytes(0), num(2), num(32), num(v)),
      COUNT_RANGE,
    ],
  ),
  [
    "build(count = MAX_LEAVES) passes the count check",
    b(bytes(0), num(2), num(32), num(MAX_LEAVES)),
    length(0, MAX_LEAVES, 32),
  ],
  // length
  ["build(63 bytes, 2, 32, 2)", hashed(0, bytes(63, 1)), length(63, 2, 32)],
  ["build(65 bytes, 2, 32, 2)", hashed(0, bytes(65, 1)), length(65, 2, 32)],
  ["build(0 bytes, 0, 52, 1)", b(bytes(0), num(0), num(52), num(1)), length(0, 1, 52)],
  [
    "build(a 0-byte Uint8Array whose length says 64, 2, 32, 2)",
    hashed(0, { t: "lying", n: 0, length: 64 }),
    length(0, 2, 32),
  ],
  // valid calls
  ["build(64 bytes, 2, 32, 2)", hashed(0, bytes(64, 1)), RETURNS],
  ["build(5 (address, uint256) leaves)", b(bytes(52 * 5, 3), num(0), num(52), num(5)), RETURNS],
  ["build(mode = -0, i.e. 0)", b(bytes(52 * 2, 3), num(-0), num(52), num(2)), RETURNS],
  [
    "build(3 leaves of 96 bytes at offset 5 of their buffer)",
    b(bytes(96 * 3, 4, 5), num(1), num(96), num(3)),
    RETURNS,
  ],
  [
    "build(1 leaf of MAX_ENCODED_STRIDE bytes)",
    b(bytes(MAX_ENCODED_STRIDE, 2), num(1), num(MAX_ENCODED_STRIDE), num(1)),
    RETURNS,
  ],
  [
    "build(a Buffer of 7 hashes) with an extra argument",
    b({ t: "buffer", n: 224, fill: 9 }, num(2), num(32), num(7), num(99)),
    RETURNS,
  ],
  [
    "build(a 64-byte Uint8Array whose length says 0, 2, 32, 2)",
    hashed(0, { t: "lying", n: 64, length: 0 }),
    RETURNS,
  ],
  [
    "build(a 96-byte Uint8Array whose length says 0, 1, 32, 3)",
    b({ t: "lying", n: 96, length: 0 }, num(1), num(32), num(3)),
    RETURNS,
  ],
];

// Random calls, most of them near a valid one, so that both sides of every check are drawn.
const WEIRD_NUMBERS = [
  NaN,
  Infinity,
  -Infinity,
  -0,
  0.5,
  -1,
  2 ** 31,
  2 ** 32,
  2 ** 32 + 2,
  2 ** 53,
  2 ** 62,
  2 ** 64,
  1e21,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  MAX_LEAVES,
  MAX_LEAVES + 1,
  MAX_ENCODED_STRIDE,
  MAX_ENCODED_STRIDE + 32,
  52,
  32,
  64,
  3,
];
const weirdNumber: fc.Arbitrary<Arg> = fc.oneof(
  fc.constantFrom(...WEIRD_NUMBERS).map(num),
  fc.double().map(num),
  fc.integer({ min: -100, max: 100 }).map(num),
  fc.constantFrom(...NOT_NUMBERS.map(([, arg]) => arg)),
);
const randomBuild: fc.Arbitrary<Call> = fc
  .oneof(
    fc.record({ mode: fc.constant(0), stride: fc.constant(52) }),
    fc.record({ mode: fc.constant(1), stride: fc.integer({ min: 1, max: 9 }).map((w) => 32 * w) }),
    fc.record({ mode: fc.constant(2), stride: fc.constant(32) }),
  )
  .chain(({ mode, stride }) =>
    fc.integer({ min: 1, max: 12 }).chain((count) =>
      fc.tuple(
        fc.oneof(
          { weight: 4, arbitrary: fc.nat(255).map((fill) => bytes(count * stride, fill)) },
          {
            weight: 1,
            arbitrary: fc
              .integer({ min: -1, max: 1 })
              .map((d) => bytes(Math.max(0, count * stride + d), 1)),
          },
          { weight: 1, arbitrary: fc.constantFrom(...NOT_UINT8ARRAYS.map(([, arg]) => arg)) },
        ),
        fc.oneof(
          { weight: 4, arbitrary: fc.constant(num(mode)) },
          { weight: 1, arbitrary: weirdNumber },
        ),
        fc.oneof(
          { weight: 4, arbitrary: fc.constant(num(stride)) },
          { weight: 1, arbitrary: weirdNumber },
        ),
        fc.oneof(
          { weight: 4, arbitrary: fc.constant(num(count)) },
          { weight: 1, arbitrary: weirdNumber },
        ),
      ),
    ),
  )
  .map((args) => b(...args));
const randomKeccak: fc.Arbitrary<Call> = fc.oneof(
  fc
    .tuple(fc.nat(300), fc.nat(255), fc.nat(7))
    .map(([n, fill, offset]) => k(bytes(n, fill, offset))),
  fc.constantFrom(...NOT_UINT8ARRAYS.map(([, arg]) => k(arg))),
  weirdNumber.map((arg) => k(arg)),
);
const SEED = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RANDOM = fc.sample(
  fc.oneof({ weight: 4, arbitrary: randomBuild }, { weight: 1, arbitrary: randomKeccak }),
  {
    numRuns: 300,
    seed: SEED,
  },
);

describe("native Merkle backends: argument guard", function () {
  this.timeout(180_000);
  const outcomes = new Map<Target, Outcome[]>();
  const running = TARGETS.filter((t) => available[t]);

  before(async function () {
    if (!available.raw || !available.native) {
      if (process.env.OPG_REQUIRE_NATIVE === "1") throw new Error("native addon not built");
    }
    const calls = [...CASES.map(([, call]) => call), ...RANDOM];
    const results = await Promise.all(running.map((t) => runCalls(t, calls)));
    running.forEach((t, i) => outcomes.set(t, results[i]!));
  });

  for (const target of TARGETS) {
    describe(`${target === "raw" ? "the raw addon binding" : `${target}Backend`}`, function () {
      before(function () {
        if (!available[target]) this.skip();
      });

      CASES.forEach(([what, call, outcome], i) => {
        const text =
          outcome === RETURNS ? "returns the expected result" : `throws ${outcome.threw}`;
        it(`${what} ${text}`, () => {
          expect(outcomes.get(target)![i]).to.deep.equal(
            outcome === RETURNS ? expected(call) : outcome,
          );
        });
      });
    });
  }

  describe(`on ${RANDOM.length} random calls (FC_SEED=${SEED})`, () => {
    before(function () {
      if (running.length < 2) this.skip();
    });

    it("every target refuses and returns exactly the same, and none crashes", () => {
      const [first, ...others] = running;
      const base = outcomes.get(first!)!.slice(CASES.length);
      for (const other of others) {
        const theirs = outcomes.get(other)!.slice(CASES.length);
        RANDOM.forEach((call, i) => {
          expect(theirs[i], `${other} vs ${first} on ${JSON.stringify(call)}`).to.deep.equal(
            base[i],
          );
          expect(base[i]).to.not.have.property("crashed");
        });
      }
      // The draw reaches both sides of the guard.
      const returned = base.filter((o) => "returned" in o).length;
      expect(returned, "calls that returned").to.be.within(
        RANDOM.length * 0.1,
        RANDOM.length * 0.9,
      );
    });
  });

  describe("when the machine cannot allocate the tree", function () {
    // 2^26 leaves: a 2 GiB input that fits under a 4 GiB address-space limit, and a 4 GiB tree that
    // does not. The input is zeros and never touched, so this costs no memory.
    const call = b(bytes(MAX_LEAVES * 32), num(2), num(32), num(MAX_LEAVES));
    for (const target of TARGETS) {
      it(`${target}: build throws Error "build: out of memory" instead of aborting`, async function () {
        if (!available[target] || process.platform !== "linux") this.skip();
        const [outcome] = await runCalls(target, [call], 4 * 1024 * 1024);
        expect(outcome).to.deep.equal({ threw: "Error", message: "build: out of memory" });
      });
    }
  });
});

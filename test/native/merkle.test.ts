import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";
import { keccak256 as ethersKeccak, hexlify } from "ethers";
import fc from "fast-check";

import {
  MAX_ENCODED_STRIDE,
  MAX_LEAVES,
  buildTree,
  buildTreeFromHashes,
  fallbackBackend,
  nativeBackend,
  processProof,
} from "../../native/index.js";
import type { Backend } from "../../native/index.js";
import { InputError } from "../../offchain/common/errors.js";

// Both backends run the same suite. Set OPG_REQUIRE_NATIVE=1 (CI) to fail when the addon is missing.
const backends: Array<[string, Backend | null]> = [
  ["native", nativeBackend],
  ["fallback", fallbackBackend],
];

const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => hexlify(b));
const amount = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n });
const leavesArb = fc.array(fc.tuple(address, amount), { minLength: 1, maxLength: 40 });

for (const [name, backend] of backends) {
  describe(`native Merkle engine (${name} backend)`, function () {
    before(function () {
      if (backend === null) {
        if (process.env.OPG_REQUIRE_NATIVE === "1") throw new Error("native addon not built");
        this.skip();
      }
    });
    const b = () => backend!;

    describe("keccak256", () => {
      it("matches the known vectors", () => {
        expect(hexlify(b().keccak256(new Uint8Array()))).to.equal(
          "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
        );
        expect(hexlify(b().keccak256(Buffer.from("abc")))).to.equal(
          "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
        );
      });

      it("matches ethers on random inputs across block boundaries", () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 600 }), (data) => {
            expect(hexlify(b().keccak256(data))).to.equal(ethersKeccak(data));
          }),
          { numRuns: 200 },
        );
        for (const len of [135, 136, 137, 272]) {
          const data = new Uint8Array(len).fill(7);
          expect(hexlify(b().keccak256(data))).to.equal(ethersKeccak(data));
        }
      });
    });

    describe("buildTree (address, uint256)", () => {
      it("gives OpenZeppelin's root, proofs, multiproofs and dump on random data", () => {
        fc.assert(
          fc.property(leavesArb, fc.nat(), (leaves, seed) => {
            const ours = buildTree(leaves, ["address", "uint256"], { backend: b() });
            const oz = StandardMerkleTree.of(leaves, ["address", "uint256"]);
            expect(ours.root).to.equal(oz.root);
            for (let i = 0; i < leaves.length; i++) {
              expect(ours.proof(i)).to.deep.equal(oz.getProof(i));
              expect(ours.verify(i, ours.proof(i))).to.be.true;
            }
            const picks = [...new Set([seed % leaves.length, (seed * 7) % leaves.length])];
            const multi = ours.multiProof(picks);
            const ozMulti = oz.getMultiProof(picks);
            expect(multi.proof).to.deep.equal(ozMulti.proof);
            expect(multi.proofFlags).to.deep.equal(ozMulti.proofFlags);
            expect(multi.leaves).to.deep.equal(ozMulti.leaves);
            expect(StandardMerkleTree.load(ours.dump() as never).root).to.equal(oz.root);
          }),
          { numRuns: 60 },
        );
      });

      it("handles one leaf, odd sizes and duplicate leaves", () => {
        const a = "0x00000000000000000000000000000000000000aa";
        for (const leaves of [
          [[a, 1n]],
          [
            [a, 1n],
            [a, 1n],
          ],
          [
            [a, 1n],
            [a, 2n],
            [a, 1n],
            [a, 1n],
            [a, 3n],
          ],
        ] as [string, bigint][][]) {
          const ours = buildTree(leaves, ["address", "uint256"], { backend: b() });
          const oz = StandardMerkleTree.of(leaves, ["address", "uint256"]);
          expect(ours.root).to.equal(oz.root);
          expect(ours.dump().values.map((v) => v.treeIndex)).to.deep.equal(
            oz.dump().values.map((v) => v.treeIndex),
          );
          leaves.forEach((_, i) => expect(ours.proof(i)).to.deep.equal(oz.getProof(i)));
        }
      });
    });

    describe("buildTree (bytes32) and other types", () => {
      it("gives OpenZeppelin's root and proofs", () => {
        fc.assert(
          fc.property(
            fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hexlify), {
              minLength: 1,
              maxLength: 30,
            }),
            (hashes) => {
              const leaves = hashes.map((h) => [h]);
              const ours = buildTree(leaves, ["bytes32"], { backend: b() });
              const oz = StandardMerkleTree.of(leaves, ["bytes32"]);
              expect(ours.root).to.equal(oz.root);
              leaves.forEach((_, i) => expect(ours.proof(i)).to.deep.equal(oz.getProof(i)));
            },
          ),
          { numRuns: 40 },
        );
      });

      it("encodes static and dynamic tuples like OpenZeppelin", () => {
        const statics = [
          [1n, true, "0x00000000000000000000000000000000000000bb"],
          [2n, false, "0x00000000000000000000000000000000000000cc"],
        ];
        const st = ["uint64", "bool", "address"];
        expect(buildTree(statics, st, { backend: b() }).root).to.equal(
          StandardMerkleTree.of(statics, st).root,
        );
        const dyn = [
          ["model-a", 5n],
          ["model-b", 6n],
          ["model-c", 7n],
        ];
        const dt = ["string", "uint256"];
        const ours = buildTree(dyn, dt, { backend: b() });
        expect(ours.root).to.equal(StandardMerkleTree.of(dyn, dt).root);
        expect(processProof(ours.leafHash(2), ours.proof(2), b())).to.equal(ours.root);
      });

      it("hashes static tuples up to MAX_ENCODED_STRIDE bytes natively and wider ones in TS, same roots", () => {
        const widest = MAX_ENCODED_STRIDE / 32;
        for (const width of [widest, widest + 1]) {
          const types = Array.from({ length: width }, () => "uint8");
          const leaves = [1, 2, 3].map((v) =>
            Array.from({ length: width }, (_, i) => (v * i) % 256),
          );
          expect(buildTree(leaves, types, { backend: b() }).root).to.equal(
            StandardMerkleTree.of(leaves, types).root,
          );
        }
      });
    });

    describe("input checking", () => {
      const check = (leaves: unknown[][], types: string[], message: RegExp) => {
        expect(() => buildTree(leaves as never, types, { backend: b() }))
          .to.throw(InputError)
          .with.property("message")
          .that.matches(message);
      };
      it("rejects an empty tree, wrong arity and bad values naming the leaf", () => {
        check([], ["address", "uint256"], /at least one leaf/);
        check(
          [["0x00000000000000000000000000000000000000aa"]],
          ["address", "uint256"],
          /leaf 0: expected 2 values/,
        );
        check([["0x1234", 1n]], ["address", "uint256"], /leaf 0: address must be/);
        check(
          [
            ["0x00000000000000000000000000000000000000aa", 1n],
            ["0x00000000000000000000000000000000000000zz", 1n],
          ],
          ["address", "uint256"],
          /leaf 1: address/,
        );
        check(
          [["0x00000000000000000000000000000000000000aa", -1n]],
          ["address", "uint256"],
          /uint256 range/,
        );
        check(
          [["0x00000000000000000000000000000000000000aa", 1n << 256n]],
          ["address", "uint256"],
          /uint256 range/,
        );
        check(
          [["0x00000000000000000000000000000000000000aa", 1.5]],
          ["address", "uint256"],
          /non-negative integer/,
        );
        check([["0x12"]], ["bytes32"], /leaf 0: bytes32/);
        check([["x"]], ["uint8"], /leaf 0: does not encode/);
        check(
          [["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".replace("5aA", "5AA"), 1n]],
          ["address", "uint256"],
          /checksum/,
        );
      });

      it("refuses more than MAX_LEAVES leaves before reading them", () => {
        check(new Array<unknown[]>(MAX_LEAVES + 1), ["address", "uint256"], /too many leaves/);
        expect(() => buildTreeFromHashes(new Array<string>(MAX_LEAVES + 1), { backend: b() }))
          .to.throw(InputError)
          .with.property("message")
          .that.matches(/too many leaves/);
      });

      it("accepts a valid EIP-55 checksum and rejects out-of-range proof indices", () => {
        const t = buildTree(
          [["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "12"]],
          ["address", "uint256"],
          { backend: b() },
        );
        expect(() => t.proof(1)).to.throw(InputError);
        expect(() => t.multiProof([0, 0])).to.throw(InputError);
      });
    });
  });
}

import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { expect } from "chai";

import { buildMerkleFromCsv, parseLeavesCsv } from "../../offchain/cli/commands/merkle.js";
import { InputError } from "../../offchain/common/errors.js";

const A = "0x00000000000000000000000000000000000000aa";
const B = "0x00000000000000000000000000000000000000bb";

describe("opg merkle build", () => {
  it("parses rows with or without a header, skipping blank lines", () => {
    expect(parseLeavesCsv(`address,amount\n${A},1\n\n${B}, 2\n`)).to.deep.equal({
      leaves: [
        [A, 1n],
        [B, 2n],
      ],
      total: 3n,
    });
    expect(parseLeavesCsv(`${A},7`).total).to.equal(7n);
  });

  for (const [text, message] of [
    [`${A},1\n${B}`, /line 2: expected 2 fields/],
    [`${A},1\n0x12,1`, /line 2: not an address/],
    [`${A},-1`, /line 1: amount/],
    [`${A},1.5`, /line 1: amount/],
    [
      `${A},1\n${A.toUpperCase().replace("0X", "0x")},2`,
      /line 2: address already listed on line 1/,
    ],
    ["address,amount\n", /no rows/],
  ] as const) {
    it(`rejects ${JSON.stringify(text)} with ${String(message)}`, () => {
      expect(() => parseLeavesCsv(text))
        .to.throw(InputError)
        .with.property("message")
        .that.matches(message);
    });
  }

  it("writes a tree that StandardMerkleTree.load accepts, with the printed root", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "opg-merkle-"));
    await writeFile(path.join(dir, "in.csv"), `${A},100\n${B},5\n`);
    const out = path.join(dir, "tree.json");
    const { root, count, total } = await buildMerkleFromCsv(path.join(dir, "in.csv"), out);
    expect([count, total]).to.deep.equal([2, 105n]);
    const loaded = StandardMerkleTree.load(JSON.parse(await readFile(out, "utf8")));
    expect(loaded.root).to.equal(root);
    expect(root).to.equal(
      StandardMerkleTree.of(
        [
          [A, 100n],
          [B, 5n],
        ],
        ["address", "uint256"],
      ).root,
    );
  });

  it("reports an unreadable file as an InputError", async () => {
    try {
      await buildMerkleFromCsv("/nonexistent/x.csv");
      expect.fail("expected an error");
    } catch (error) {
      expect(error).to.be.instanceOf(InputError);
    }
  });
});

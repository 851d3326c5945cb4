/**
 * `npm run demo`: the end-to-end flow on an embedded (in-process) chain, in readable steps.
 * Each domain contributes a step in offchain/demo/.
 */
import { network } from "hardhat";

import { Narrator } from "../offchain/demo/narrator.js";
import type { ChainControl } from "../offchain/demo/vesting.js";
import { runVestingDemo } from "../offchain/demo/vesting.js";

const root = process.cwd();
const { ethers, networkHelpers } = await network.create();
const [deployer, , , , , , , releaser] = await ethers.getSigners();

const chain: ChainControl = {
  now: async () => BigInt(await networkHelpers.time.latest()),
  mineAt: async (t) => networkHelpers.time.increaseTo(t),
  nextBlockAt: async (t) => networkHelpers.time.setNextBlockTimestamp(t),
};
const n = new Narrator();
console.log(
  "OPG protocol demo: everything below happens on an embedded chain, and every figure is read back from it.",
);

await runVestingDemo(root, deployer!, releaser!, chain, n);

n.section("Done");
n.say("Check it yourself: npx hardhat node, npx hardhat opg:deploy --network localhost, then");
n.say(
  "npx hardhat opg:vesting:calendar --network localhost and npx hardhat opg:vesting:audit --network localhost",
);

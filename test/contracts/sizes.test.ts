/**
 * EIP-170: a contract's runtime code may not exceed 24,576 bytes on mainnet. The in-process chain
 * allows larger code (coverage instrumentation needs it), so the limit is checked here, on the
 * compiled artifacts of every contract a deployment uses.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";

const LIMIT = 24_576;
const DEPLOYED = [
  "token/OPGToken.sol/OPGToken",
  "vesting/VestingVault.sol/VestingVault",
  "staking/NodeStaking.sol/NodeStaking",
  "tee/TeeRegistry.sol/TeeRegistry",
  "tee/DevAttestationVerifier.sol/DevAttestationVerifier",
  "tee/QuorumAttestationVerifier.sol/QuorumAttestationVerifier",
  "registry/ModelRegistry.sol/ModelRegistry",
  "anchoring/InferenceLedger.sol/InferenceLedger",
  "anchoring/examples/RiskGatedVault.sol/RiskGatedVault",
  "rewards/ContributorRewards.sol/ContributorRewards",
  "governance/OPGTimelock.sol/OPGTimelock",
  "governance/OPGGovernor.sol/OPGGovernor",
];

describe("contract sizes (EIP-170)", function () {
  // Under `--coverage` the artifacts hold instrumented code, which is larger by design.
  before(function () {
    if (process.argv.includes("--coverage")) this.skip();
  });

  for (const name of DEPLOYED) {
    it(`${path.basename(name)} fits in ${LIMIT.toLocaleString("en-US")} bytes`, async () => {
      const artifact = JSON.parse(
        await readFile(path.join("artifacts", "contracts", `${name}.json`), "utf8"),
      ) as {
        deployedBytecode: string;
      };
      const size = (artifact.deployedBytecode.length - 2) / 2;
      expect(size, `${name}: ${size} bytes`).to.be.greaterThan(0);
      expect(size, `${name}: ${size} bytes`).to.be.at.most(LIMIT);
    });
  }
});

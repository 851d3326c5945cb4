import { createRequire } from "node:module";

import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";

import { opgTasks } from "./tasks/index.js";

const require = createRequire(import.meta.url);

// Solidity is compiled offline from the `solc` npm package: no compiler download.
// The version here must equal the exact version pinned in package.json.
const SOLC_VERSION = "0.8.30";
const solcSettings = {
  optimizer: { enabled: true, runs: 10_000 },
  evmVersion: "prague",
  viaIR: false,
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  tasks: opgTasks,
  solidity: {
    profiles: {
      default: {
        version: SOLC_VERSION,
        path: require.resolve("solc/soljson.js"),
        settings: solcSettings,
      },
      production: {
        version: SOLC_VERSION,
        path: require.resolve("solc/soljson.js"),
        settings: solcSettings,
      },
    },
  },
  paths: {
    tests: { mocha: "test", solidity: "test" },
  },
  // Solidity tests (test/contracts/invariants/*.t.sol): handler-driven invariant suites. Sized so that the
  // whole Solidity suite stays within about a minute of `npm test` on 2 cores (docs/invariants.md).
  test: {
    solidity: {
      fuzz: { runs: 256 },
      invariant: { runs: 32, depth: 32, failOnRevert: false },
    },
  },
  networks: {
    // In-process chain used by tests, tasks and `npm run demo` (Hardhat's default network).
    default: {
      type: "edr-simulated",
      chainType: "l1",
      // Coverage instrumentation makes the largest contracts exceed EIP-170; test/contracts/sizes.test.ts
      // checks the real (uninstrumented) bytecode against the limit instead.
      allowUnlimitedContractSize: true,
    },
    // `npx hardhat node --hostname 127.0.0.1` (JSON-RPC) for end-to-end runs.
    localhost: {
      type: "http",
      chainType: "l1",
      url: "http://127.0.0.1:8545",
    },
    // The end-to-end tests' own `hardhat node`, on a free loopback port chosen by the test.
    e2e: {
      type: "http",
      chainType: "l1",
      url: process.env.OPG_E2E_RPC_URL ?? "http://127.0.0.1:8545",
    },
    // Real networks: URL and key come from the environment or the Hardhat keystore,
    // never from committed files (`npx hardhat keystore set SEPOLIA_PRIVATE_KEY`).
    sepolia: {
      type: "http",
      chainType: "l1",
      url: configVariable("SEPOLIA_RPC_URL"),
      accounts: [configVariable("SEPOLIA_PRIVATE_KEY")],
    },
  },
});

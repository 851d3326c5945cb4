/**
 * `npm run demo`: the end-to-end flow of DESIGN.md on an embedded (in-process) chain, in readable steps,
 * every figure read back from the chain. Each step lives in offchain/demo/ (or its domain's demo.ts).
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";

import { network } from "hardhat";
import pino from "pino";

import { formatReceiptBundle } from "../offchain/chain/bundle.js";
import { ledgerDomain } from "../offchain/chain/eip712.js";
import { deploymentDir } from "../offchain/chain/deployment.js";
import { runAnchoringDemo } from "../offchain/demo/anchoring.js";
import { Narrator } from "../offchain/demo/narrator.js";
import type { ChainControl } from "../offchain/demo/vesting.js";
import { runVestingAudit, runVestingDemo } from "../offchain/demo/vesting.js";
import { deploySystem } from "../offchain/deploy/system.js";
import { executeThroughTimelock } from "../offchain/deploy/governance.js";
import { startExplorer } from "../offchain/explorer/server.js";
import { InferenceEngine } from "../offchain/inference/engine.js";
import { resolveSource } from "../offchain/rewards/source.js";
import { runRewardsDemo } from "../offchain/rewards/demo.js";
import { epochAt } from "../offchain/rewards/epochs.js";
import { stakingDemo } from "../offchain/staking/demo.js";
import { measurementFromPcrs } from "../offchain/staking/units.js";
import { DevAttestor } from "../offchain/tee/devAttestation.js";
import { Enclave } from "../offchain/tee/enclave.js";
import { loadPlan } from "../offchain/vesting/plan.js";

const root = process.cwd();
const { ethers, networkHelpers, provider } = await network.create();
const signers = await ethers.getSigners();
const at = (i: number) => signers[i]!;
const deployer = at(0);
const n = new Narrator();
const chain: ChainControl = {
  now: async () => BigInt(await networkHelpers.time.latest()),
  mineAt: async (t) => networkHelpers.time.increaseTo(t),
  nextBlockAt: async (t) => networkHelpers.time.setNextBlockTimestamp(t),
};
console.log(
  "OPG protocol demo: everything below happens on an embedded chain, and every figure is read back from it.",
);

// 1. Deploy everything, seal the plan, hand governance to the timelock.
n.section(
  "Deploy the protocol; create and seal the published vesting plan; governance to the timelock",
);
const planFile = path.join("deployments", "localhost", "vesting-plan.json");
const plan = await loadPlan(path.join(root, planFile));
const dir = deploymentDir(root, "default");
await rm(dir, { recursive: true, force: true }); // the embedded chain is new on every run
const system = await deploySystem(ethers, {
  dir,
  network: "default",
  plan,
  planFile,
  beneficiarySigners: signers,
  log: (m) => n.say(m),
});

// 2. Vesting: the calendar and the 8.08M tranche to the second.
await runVestingDemo({ vault: system.vault, token: system.token, plan }, deployer, at(7), chain, n);

// 3. Staking: two operators, a GPU node and a TEE node; the enclave registers with its attestation.
n.section("Operators stake a GPU node and a TEE node; the enclave registers with its attestation");
const { chainId } = await ethers.provider.getNetwork();
const domain = ledgerDomain(chainId, await system.ledger.getAddress());
const attestor = new DevAttestor({
  now: () => new Date(Number(BigInt(Date.now()) / 1000n) * 1000),
});
// The GPU node's engine (cuda where present, else cpu) and the enclave's own (always cpu); quiet logs.
const quiet = pino({ level: "warn" }, pino.destination(2));
const engine = new InferenceEngine({ config: { provider: "auto" }, logger: quiet });
const enclaveEngine = new InferenceEngine({ config: { provider: "cpu" }, logger: quiet });
await enclaveEngine.loadModelsDir(path.join(root, "models"));
const enclave = new Enclave({
  engine: enclaveEngine,
  attestor,
  chainId,
  ledger: domain.verifyingContract,
});
const pcrs = attestor.measurement();
const measurement = measurementFromPcrs([pcrs[0]!, pcrs[1]!, pcrs[2]!]);
const staked = await stakingDemo(
  ethers,
  networkHelpers,
  {
    token: system.token,
    staking: system.staking,
    tee: system.tee,
    measurement,
    enclaveKey: enclave.address,
    attestation: enclave.attestation(Buffer.from("opg-demo-registration-nonce")),
    approveMeasurement: async (m, label) => {
      // Governance is the timelock: schedule, wait out its delay in public, execute.
      const data = system.tee.interface.encodeFunctionData("approveMeasurement", [m, label]);
      await executeThroughTimelock(
        system.timelock,
        await system.tee.getAddress(),
        data,
        async (s) => {
          n.say(
            `timelock: approveMeasurement(${m.slice(0, 18)}...) scheduled, executable in ${s / 3600n} h`,
          );
          await networkHelpers.time.increase(s);
        },
      );
    },
  },
  (line) => n.say(line),
);
n.block(staked.table);

// 4. Proof anchoring, verification by anyone, and a slash on evidence.
const anchored = await runAnchoringDemo({
  system,
  engine,
  enclave,
  domain,
  gpuNode: staked.gpuNode,
  gpuSigner: staked.gpuSigner,
  modelOwner: at(10),
  contributors: [at(11).address, at(12).address],
  relayer: at(13),
  watcher: at(8),
  modelsDir: path.join(root, "models"),
  now: () => chain.now(),
  n,
});

// 5. The epoch closes: rewards from anchored usage, proposed, accepted after the timelock, claimed, verified.
n.section(
  "The epoch closes: rewards computed from the chain, proposed, accepted, claimed, verified",
);
const source = await resolveSource(ethers.provider, { deploymentDir: dir });
const epoch = epochAt(source.config, anchored.anchoredAt);
n.say(`the batch was anchored in rewards epoch ${epoch} (deployments/hardhat/rewards.json)`);
await runRewardsDemo({
  source,
  updater: deployer,
  sender: at(9),
  contributor: at(11).address,
  chain,
  log: (line) => n.say(line),
  outDir: path.join("reports", "rewards"),
  epoch,
});

// 6. The auditor's view of the vesting plan, after all of the above.
await runVestingAudit({ vault: system.vault, token: system.token, plan }, n);

// 7. The transparency explorer on the same chain: see it and check it in a browser.
n.section("The transparency explorer");
const bundleFile = path.join("reports", "demo-receipt.json");
await mkdir(path.dirname(bundleFile), { recursive: true });
await writeFile(bundleFile, formatReceiptBundle(anchored.bundle));
const explorer = await startExplorer({
  provider,
  deploymentDir: dir,
  port: Number(process.env.OPG_EXPLORER_PORT ?? 0),
});
const page = await fetch(explorer.url);
n.say(
  `explorer: ${explorer.url} (HTTP ${page.status}); it reads only this chain and the deployment record`,
);
n.say(`paste ${bundleFile} into its "verify a receipt" box to check the receipt in the browser`);

n.section("Done");
n.say(
  "Every step above can be checked against a JSON-RPC chain: see the README (npx hardhat node, opg:deploy,",
);
n.say(
  "opg:vesting:calendar / audit, opg:stake:status, opg receipt verify, opg rewards verify, opg explorer).",
);
if (process.stdout.isTTY && process.env.CI === undefined) {
  n.say(`The explorer stays up at ${explorer.url}; press Ctrl-C to stop.`);
  await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
}
await explorer.close();

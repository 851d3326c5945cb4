/**
 * The end-to-end flow of DESIGN.md on one chain, step by step: deploy the protocol and hand governance
 * to the governor and its timelock; the vesting calendar and the 8.08M tranche; two operators stake a GPU node and a
 * TEE node and the enclave registers; inference is anchored, verified and a lie slashed; the rewards
 * epoch closes. With `services`, the relayer and the enclave also run as services in between (requests
 * over HTTP and on chain, anchored by the relayer). `npm run demo` narrates it all; the explorer's
 * browser tests seed their chain with it (without the services).
 */
import { rm } from "node:fs/promises";
import path from "node:path";

import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkHelpers } from "@nomicfoundation/hardhat-network-helpers/types";
import { Wallet } from "ethers";
import pino from "pino";

import { ChainClock } from "../chain/clock.js";
import { readRecord } from "../chain/deployment.js";
import { ledgerDomain } from "../chain/eip712.js";
import type { Eip1193Provider } from "../chain/rpc-bridge.js";
import type { System } from "../deploy/system.js";
import { deploySystem } from "../deploy/system.js";
import { buildProposal } from "../governance/actions.js";
import { governanceOf, localClock, passProposal } from "../governance/proposals.js";
import { formatVotes } from "../governance/report.js";
import { InferenceEngine } from "../inference/engine.js";
import type { RewardsSource } from "../rewards/chain.js";
import { runRewardsDemo } from "../rewards/demo.js";
import { epochAt } from "../rewards/epochs.js";
import { resolveSource } from "../rewards/source.js";
import type { DemoResult as StakingDemoResult } from "../staking/demo.js";
import { stakingDemo } from "../staking/demo.js";
import { measurementFromPcrs } from "../staking/units.js";
import { enclaveChainOver } from "../tee/chain-view.js";
import { DevAttestor } from "../tee/devAttestation.js";
import { Enclave } from "../tee/enclave.js";
import type { Plan } from "../vesting/plan.js";
import { loadPlan } from "../vesting/plan.js";

import type { AnchoringDemoContext, AnchoringDemoResult } from "./anchoring.js";
import { runAnchoringDemo, runSlashDemo } from "./anchoring.js";
import type { Narrator } from "./narrator.js";
import type { RelayerDemoResult } from "./relayer.js";
import { runRelayerDemo } from "./relayer.js";
import type { ChainControl } from "./vesting.js";
import { runVestingDemo } from "./vesting.js";

export const DEMO_PLAN_FILE = path.join("deployments", "localhost", "vesting-plan.json");

export interface DemoFlowOptions {
  /** Repository root (plan file, models). */
  root: string;
  /** Where the deployment record goes (emptied first: the chain is new). */
  deploymentDir: string;
  /** Where the rewards step writes its reward table and proofs. */
  rewardsOutDir: string;
  n: Narrator;
  /** The GPU node's execution provider: "auto" (cuda when present) or "cpu". */
  gpuProvider: "auto" | "cpu";
  /**
   * Also run the relayer and the enclave as services (offchain/demo/relayer.ts): the chain served
   * over JSON-RPC on loopback, HTTP and on-chain requests anchored by the relayer. Default false.
   */
  services?: boolean;
}

export interface DemoFlowResult {
  plan: Plan;
  system: System;
  staked: StakingDemoResult;
  anchored: AnchoringDemoResult;
  /** What the relayer served and anchored (with `services`). */
  relayed: RelayerDemoResult | null;
  rewardsSource: RewardsSource;
  rewardsEpoch: bigint;
  /** Earned rewards in the epoch and claimed them. */
  contributor: string;
  /** Earned rewards in the epoch and has not claimed them. */
  unclaimed: string;
}

export async function runDemoFlow(
  connection: { ethers: HardhatEthers; networkHelpers: NetworkHelpers; provider: Eip1193Provider },
  options: DemoFlowOptions,
): Promise<DemoFlowResult> {
  const { ethers, networkHelpers } = connection;
  const { root, n } = options;
  const dir = options.deploymentDir;
  const signers = await ethers.getSigners();
  const at = (i: number) => signers[i]!;
  const chain: ChainControl = {
    now: async () => BigInt(await networkHelpers.time.latest()),
    mineAt: async (t) => networkHelpers.time.increaseTo(t),
    nextBlockAt: async (t) => networkHelpers.time.setNextBlockTimestamp(t),
  };

  // 1. Deploy everything, seal the plan, hand governance to the governor and its timelock.
  n.section(
    "Deploy the protocol; create and seal the published vesting plan; governance to OPG holders (governor + timelock)",
  );
  const plan = await loadPlan(path.join(root, DEMO_PLAN_FILE));
  await rm(dir, { recursive: true, force: true });
  const system = await deploySystem(ethers, {
    dir,
    network: "default",
    plan,
    planFile: DEMO_PLAN_FILE,
    beneficiarySigners: signers,
    log: (m) => n.say(m),
  });

  // 2. Vesting: the calendar and the 8.08M tranche to the second.
  await runVestingDemo({ vault: system.vault, token: system.token, plan }, at(0), at(7), chain, n);

  // 3. Staking: two operators, a GPU node and a TEE node; the enclave registers with its attestation.
  n.section(
    "Operators stake a GPU node and a TEE node; the enclave registers with its attestation",
  );
  const { chainId } = await ethers.provider.getNetwork();
  const domain = ledgerDomain(chainId, await system.ledger.getAddress());
  const attestor = new DevAttestor({
    now: () => new Date(Number(BigInt(Date.now()) / 1000n) * 1000),
  });
  // The GPU node's engine and the enclave's own (always cpu); quiet logs.
  const quiet = pino({ level: "warn" }, pino.destination(2));
  const engine = new InferenceEngine({ config: { provider: options.gpuProvider }, logger: quiet });
  const enclaveEngine = new InferenceEngine({ config: { provider: "cpu" }, logger: quiet });
  await enclaveEngine.loadModelsDir(path.join(root, "models"));
  // The enclave serves one GPU node: its id is chosen now, and staked below.
  const gpuNode = Wallet.createRandom().address;
  const enclaveClock = new ChainClock(async () =>
    BigInt((await ethers.provider.getBlock("latest"))?.timestamp ?? 0),
  );
  await enclaveClock.start();
  const enclave = new Enclave({
    engine: enclaveEngine,
    attestor,
    chainId,
    ledger: domain.verifyingContract,
    clientNode: gpuNode,
    chain: await enclaveChainOver(ethers.provider, domain.verifyingContract),
    clock: enclaveClock,
  });
  const pcrs = attestor.measurement();
  const staked = await stakingDemo(
    ethers,
    networkHelpers,
    {
      token: system.token,
      staking: system.staking,
      tee: system.tee,
      measurement: measurementFromPcrs([pcrs[0]!, pcrs[1]!, pcrs[2]!]),
      enclaveKey: enclave.address,
      gpuNode,
      attestation: enclave.attestation(Buffer.from("opg-demo-registration-nonce")),
      approveMeasurement: async (m, label) => {
        // Governance is OPG holders: a holder delegates its votes to itself, proposes, votes; after the
        // voting period the proposal is queued in the timelock and executed once its delay has passed.
        const h = governanceOf(system);
        const holder = at(0);
        const proposal = await buildProposal(
          { action: "approve-measurement", measurement: m, label },
          { addresses: system.addresses },
        );
        n.say(
          `governor: holder ${holder.address} (${formatVotes(await system.token.balanceOf(holder.address))} OPG, not yet distributed) delegates to itself and proposes ${proposal.description}`,
        );
        await passProposal(
          h,
          { proposer: holder, voters: [holder] },
          proposal,
          localClock(ethers.provider),
          (line) => n.say(`governor: ${line}`),
        );
      },
    },
    (line) => n.say(line),
  );
  n.block(staked.table);

  // 4. Proof anchoring and verification by anyone; with `services`, the same through the relayer and
  // the enclave as running services; then a slash on evidence (it jails the GPU node, so it comes last).
  const contributor = at(11).address;
  const anchoring: AnchoringDemoContext = {
    system,
    engine,
    enclave,
    domain,
    gpuNode: staked.gpuNode,
    gpuSigner: staked.gpuSigner,
    modelOwner: at(10),
    contributors: [contributor, at(12).address],
    relayer: at(13),
    watcher: at(8),
    modelsDir: path.join(root, "models"),
    now: () => chain.now(),
    n,
  };
  await enclave.start();
  await enclaveClock.sync();
  const anchored = await runAnchoringDemo(anchoring);
  const relayed = options.services
    ? await runRelayerDemo({
        provider: connection.provider,
        system,
        deployBlock: (await readRecord(dir))?.contracts.InferenceLedger?.block ?? 0,
        enclave,
        attestor,
        clock: enclaveClock,
        setSampleRate: async (ratePpm) => {
          const proposal = await buildProposal(
            { action: "set-sample-rate", ppm: String(ratePpm) },
            { addresses: system.addresses },
          );
          await passProposal(
            governanceOf(system),
            { proposer: at(0), voters: [at(0)] },
            proposal,
            localClock(ethers.provider),
            (line) => n.say(`governor: ${line}`),
          );
          // Days passed: the enclave's one-day registration is renewed by its node's signer.
          await (await system.tee.connect(staked.teeSigner).heartbeat(enclave.address)).wait();
          await (await system.staking.connect(staked.gpuSigner).heartbeat(staked.gpuNode)).wait();
          n.say("the TEE node renewed the enclave's registration; the GPU node sent a heartbeat");
          await enclaveClock.sync();
        },
        modelId: anchored.modelId,
        gpuNode: staked.gpuNode,
        gpuSigner: staked.gpuSigner,
        relayer: anchoring.relayer,
        requester: at(10),
        mine: () => networkHelpers.mine(),
        modelsDir: anchoring.modelsDir,
        gpuProvider: options.gpuProvider,
        log: quiet,
        n,
      })
    : null;
  await enclaveClock.sync();
  await runSlashDemo(anchoring, anchored.modelId);
  enclave.stop();
  enclaveClock.stop();

  // 5. The epoch closes: rewards from anchored usage, proposed, accepted after the timelock, claimed, verified.
  n.section(
    "The epoch closes: rewards computed from the chain, proposed, accepted, claimed, verified",
  );
  const rewardsSource = await resolveSource(ethers.provider, { deploymentDir: dir });
  const rewardsEpoch = epochAt(rewardsSource.config, anchored.anchoredAt);
  n.say(
    `the batch was anchored in rewards epoch ${rewardsEpoch} (${path.join(path.relative(root, dir), "rewards.json")})`,
  );
  await runRewardsDemo({
    source: rewardsSource,
    updater: at(0),
    sender: at(9),
    contributor,
    chain,
    log: (line) => n.say(line),
    outDir: options.rewardsOutDir,
    epoch: rewardsEpoch,
  });

  return {
    plan,
    system,
    staked,
    anchored,
    relayed,
    rewardsSource,
    rewardsEpoch,
    contributor,
    unclaimed: at(12).address,
  };
}

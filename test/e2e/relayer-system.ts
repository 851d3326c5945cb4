/**
 * Shared setup for the relayer's end-to-end tests and benchmark: a `hardhat node` with the whole
 * protocol deployed on it as production deploys it (offchain/deploy/system.ts: NodeStaking,
 * TeeRegistry with the development attestation verifier, ModelRegistry, InferenceLedger, governance
 * in the governor and its timelock); a GPU node and a TEE node staked in NodeStaking; the enclave image's
 * measurement approved by a governor proposal (delegate, propose, vote, queue, execute); the enclave (`opg enclave start`) registered in TeeRegistry with its
 * own attestation document; and the relayer (`opg relayer start`), each a separate process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { HDNodeWallet, JsonRpcProvider, NonceManager, Wallet, id, type Signer } from "ethers";
import { network } from "hardhat";

import { readRecord } from "../../offchain/chain/deployment.js";
import { deploySystem as deployProtocol } from "../../offchain/deploy/system.js";
import { buildProposal } from "../../offchain/governance/actions.js";
import { governanceOf, localClock, passProposal } from "../../offchain/governance/proposals.js";
import * as actions from "../../offchain/staking/actions.js";
import { measurementFromPcrs } from "../../offchain/staking/units.js";
import { devPcrs } from "../../offchain/tee/devAttestation.js";
import { loadPlan } from "../../offchain/vesting/plan.js";
import type {
  InferenceLedger,
  NodeStaking,
  OPGToken,
  TeeRegistry,
} from "../../types/ethers-contracts/index.js";
import { ROOT, freePort } from "../helpers/processes.js";

const MNEMONIC = "test test test test test test test test test test test junk";
const INFERENCE = 1;
const VERIFIER = 2;
/** The image `opg enclave start` attests to by default (offchain/tee/devAttestation.ts). */
const ENCLAVE_IMAGE = "opg-enclave-dev";

export const RISK_MLP = JSON.parse(
  readFileSync(path.join(ROOT, "models", "risk-mlp", "manifest.json"), "utf8"),
) as { modelId: string };
export const SEQ_CNN = JSON.parse(
  readFileSync(path.join(ROOT, "models", "seq-cnn", "manifest.json"), "utf8"),
) as { modelId: string };

export function account(index: number): Wallet {
  const w = HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(w.privateKey);
}

/** The image measurement of the development enclave, as TeeRegistry.measurementOf computes it. */
export function devMeasurement(image = ENCLAVE_IMAGE): string {
  const pcrs = devPcrs(image);
  return measurementFromPcrs(
    [0, 1, 2].map((i) => Buffer.from(pcrs.get(i) as Uint8Array).toString("hex")),
  );
}

export interface System {
  provider: JsonRpcProvider;
  /** Account 0 (the deployer) behind a NonceManager, for the tests' own transactions. */
  admin: NonceManager;
  adminAddress: string;
  ledger: InferenceLedger;
  staking: NodeStaking;
  tee: TeeRegistry;
  token: OPGToken;
  /** The GPU node's id in NodeStaking (role INFERENCE), staked at the minimum. */
  gpuNode: string;
  /** The GPU node's signer key (NodeStaking.signerOf(gpuNode)): signs receipts. */
  nodeSigner: Wallet;
  /** The TEE node's signer key (NodeStaking.signerOf(teeNode)); holds ETH for heartbeats. */
  teeSigner: Wallet;
  /** The relayer's transaction key (account 1). */
  txKey: Wallet;
  /** The TEE node's id in NodeStaking (role VERIFIER) that the enclave is registered under. */
  teeNode: string;
  /** Registers an enclave key for the TEE node with an attestation document. */
  registerEnclave: (enclaveKey: string, attestation: Uint8Array) => Promise<void>;
  /** Renews an enclave key's registration (TeeRegistry.heartbeat by the TEE node's operator). */
  renewEnclave: (enclaveKey: string) => Promise<void>;
  /**
   * Sets InferenceLedger's sample rate (parts per million) through governance and its delay, then
   * renews the given enclaves' registrations (the delay outlasts their one-day lifetime).
   */
  setSampleRate: (ratePpm: number, enclaves: string[]) => Promise<void>;
  deployBlock: number;
  /** Governance: the governor, the token's votes, the timelock, and who proposes (account 0). */
  governance: ReturnType<typeof governanceOf>;
  proposer: Signer;
  /** deployments/<network>-like folder of this deployment: addresses.json, rewards.json. */
  deploymentDir: string;
  close: () => Promise<void>;
}

/** Deploys the protocol with offchain/deploy/system.ts on the node at `url` and stakes both nodes. */
/** Deployment options for runs that need other parameters (the soak's shorter governance). */
export type DeployOverrides = Pick<
  Parameters<typeof deployProtocol>[1],
  "stakingParams" | "votingDelay" | "votingPeriod" | "timelockDelay"
>;

export async function deploySystem(url: string, overrides: DeployOverrides = {}): Promise<System> {
  const connection = await network.create({ network: "e2e", override: { url } });
  const { ethers, networkHelpers } = connection;
  const signers = await ethers.getSigners();
  const [deployer, gpuOperator, teeOperator] = [signers[0]!, signers[14]!, signers[15]!];
  const dir = await mkdtemp(path.join(tmpdir(), "opg-e2e-deploy-"));
  const plan = await loadPlan(path.join(ROOT, "deployments/localhost/vesting-plan.json"));
  const deployed = await deployProtocol(ethers, {
    dir,
    network: "e2e",
    plan,
    planFile: "plan",
    beneficiarySigners: signers,
    ...overrides,
  });
  const { token, staking, tee, ledger, registry } = deployed;
  const deployBlock = (await readRecord(dir))?.contracts.InferenceLedger?.block ?? 0;
  // Move past the rewards pool's start (rewards epoch 1 begins there), so the anchored usage of the
  // runs below falls in a rewards epoch that the rewards test can close and recompute.
  const pool = plan.schedules.find((s) => s.categoryName === "rewards-pool")!;
  if (BigInt(await networkHelpers.time.latest()) < pool.params.start) {
    await networkHelpers.time.increaseTo(pool.params.start + 3_600n);
  }

  // Both nodes staked at their role's minimum, with fresh signer keys.
  const params = await staking.params();
  const nodeSigner = Wallet.createRandom() as unknown as Wallet;
  const teeSigner = Wallet.createRandom() as unknown as Wallet;
  // Hot keys pay for their own heartbeats and registrations (opg node run).
  for (const key of [nodeSigner, teeSigner]) {
    await (await deployer.sendTransaction({ to: key.address, value: 10n ** 19n })).wait();
  }
  const gpuNode = Wallet.createRandom().address;
  const teeNode = Wallet.createRandom().address;
  await (await token.transfer(gpuOperator.address, params.minStakeInference)).wait();
  await (await token.transfer(teeOperator.address, params.minStakeVerifier)).wait();
  const h = { token, staking };
  await actions.registerNode(h, gpuOperator, {
    node: gpuNode,
    role: INFERENCE,
    signer: nodeSigner.address,
    amount: params.minStakeInference,
    metadataURI: "https://gpu.opg.test",
  });
  await actions.registerNode(h, teeOperator, {
    node: teeNode,
    role: VERIFIER,
    signer: teeSigner.address,
    amount: params.minStakeVerifier,
    metadataURI: "https://tee.opg.test",
  });

  // The enclave image's measurement, approved by governance: a governor proposal by the holder of the
  // undistributed supply, through the voting period and the timelock's delay.
  const measurement = devMeasurement();
  const proposal = await buildProposal(
    { action: "approve-measurement", measurement, label: "dev" },
    { addresses: deployed.addresses },
  );
  await passProposal(
    governanceOf(deployed),
    { proposer: deployer, voters: [deployer] },
    proposal,
    localClock(ethers.provider),
  );

  for (const m of [RISK_MLP, SEQ_CNN]) {
    await (
      await registry.registerModel(m.modelId, "ipfs://m", m.modelId, [deployer.address], [10_000])
    ).wait();
  }

  const provider = new JsonRpcProvider(url, undefined, {
    staticNetwork: true,
    pollingInterval: 50,
  });
  const admin = new NonceManager(account(0).connect(provider));
  return {
    provider,
    admin,
    adminAddress: deployer.address,
    ledger: ledger.connect(provider),
    staking: staking.connect(provider),
    tee: tee.connect(provider),
    token: token.connect(provider),
    gpuNode,
    nodeSigner,
    teeSigner,
    txKey: account(1),
    teeNode,
    registerEnclave: async (enclaveKey, attestation) => {
      await actions.registerEnclave(tee, staking, teeOperator, {
        node: teeNode,
        enclaveKey,
        measurement,
        attestation,
      });
    },
    renewEnclave: async (enclaveKey) => {
      await (await tee.connect(teeOperator).heartbeat(enclaveKey)).wait();
    },
    setSampleRate: async (ratePpm, enclaves) => {
      const rate = await buildProposal(
        { action: "set-sample-rate", ppm: String(ratePpm) },
        { addresses: deployed.addresses },
      );
      await passProposal(
        governanceOf(deployed),
        { proposer: deployer, voters: [deployer] },
        rate,
        localClock(ethers.provider),
      );
      for (const key of enclaves) await (await tee.connect(teeOperator).heartbeat(key)).wait();
    },
    governance: governanceOf(deployed),
    proposer: deployer,
    deployBlock,
    deploymentDir: dir,
    close: async () => {
      provider.destroy();
      await connection.close();
    },
  };
}

export interface Proc {
  child: ChildProcess;
  line: Record<string, unknown>;
  output: () => string;
}

/** Spawns `opg <args>` and resolves with its first JSON stdout line ("listening"). */
export async function startOpg(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const child = spawn(process.execPath, [path.join(ROOT, "bin", "opg.mjs"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`opg ${args[0]} did not start:\n${err}`)),
      60_000,
    );
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`opg ${args[0]} exited with ${code}:\n${err}`));
    });
  });
  return { child, line, output: () => err };
}

export async function startEnclave(
  system: System,
  rpcUrl: string,
  extra: string[] = [],
  options: { register?: boolean } = {},
): Promise<Proc & { url: string; address: string }> {
  const { chainId } = await system.provider.getNetwork();
  const proc = await startOpg([
    "enclave",
    "start",
    "--port",
    "0",
    "--models",
    "models",
    "--chain-id",
    chainId.toString(),
    "--ledger",
    await system.ledger.getAddress(),
    "--node",
    system.gpuNode,
    "--rpc",
    rpcUrl,
    ...extra,
  ]);
  const address = String(proc.line.enclave);
  const url = String(proc.line.url);
  if (options.register === false) return { ...proc, url, address };
  // The enclave's own attestation document (binding its key), registered in TeeRegistry.
  const nonce = Buffer.from(id(`e2e-${address}`).slice(2), "hex").toString("hex");
  const res = await fetch(`${url}/attestation?nonce=${nonce}`);
  const body = (await res.json()) as { document: string; enclave: string };
  if (body.enclave !== address) throw new Error(`enclave ${address} attested ${body.enclave}`);
  await system.registerEnclave(address, Buffer.from(body.document, "base64"));
  return { ...proc, url, address };
}

/**
 * The development enclave's root certificate (its `GET /info` publishes it), written to
 * `<dir>/enclave-root.pem` for the relayer's `enclave.attestation.root`. The test started that
 * enclave itself, so it may take the root from it; an operator copies it once the same way.
 */
export async function writeDevRoot(enclaveUrl: string, dir: string): Promise<string> {
  const info = (await (await fetch(`${enclaveUrl}/info`)).json()) as { devRootPem?: string };
  if (info.devRootPem === undefined) throw new Error(`enclave ${enclaveUrl} publishes no dev root`);
  const file = path.join(dir, "enclave-root.pem");
  await writeFile(file, info.devRootPem);
  return file;
}

export async function writeRelayerConfig(
  system: System,
  enclaveUrl: string,
  rpcUrl: string,
  overrides: Record<string, unknown> = {},
  dir?: string,
): Promise<{ file: string; dir: string; port: number }> {
  const d = dir ?? (await mkdtemp(path.join(tmpdir(), "opg-relayer-")));
  const port = await freePort();
  // An `enclave` override keeps the trusted root unless it names one.
  const enclave = {
    url: enclaveUrl,
    attestation: { root: await writeDevRoot(enclaveUrl, d) },
    ...(overrides.enclave as object | undefined),
  };
  const config = {
    chain: {
      rpcUrl,
      chainId: 31337,
      ledger: await system.ledger.getAddress(),
      deployBlock: system.deployBlock,
      pollIntervalMs: 50,
    },
    node: { address: system.gpuNode },
    models: { dir: path.join(ROOT, "models") },
    api: { port },
    batch: { maxSize: 256, maxAgeMs: 200 },
    listener: { confirmations: 1 },
    store: { path: path.join(d, "relayer.db") },
    log: { level: "warn" },
    ...overrides,
    enclave,
  };
  const file = path.join(d, "relayer.json");
  await writeFile(file, JSON.stringify(config, null, 2));
  return { file, dir: d, port };
}

export function relayerEnv(system: System): NodeJS.ProcessEnv {
  return {
    OPG_NODE_SIGNER_KEY: system.nodeSigner.privateKey,
    OPG_RELAYER_TX_KEY: system.txKey.privateKey,
  };
}

export async function stopProc(proc: Proc, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    proc.child.once("exit", () => resolve());
    proc.child.kill(signal);
  });
}

/** A risk-mlp input (16 features), deterministic in `i`. */
export function riskInput(i: number): { features: { dims: number[]; data: number[] } } {
  return {
    features: {
      dims: [1, 16],
      data: Array.from({ length: 16 }, (_, k) => Math.round(Math.sin(i * 16 + k) * 1000) / 1000),
    },
  };
}

export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

export async function getJson(
  url: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/**
 * Shared setup for the relayer's end-to-end tests: a `hardhat node`, the anchoring contracts
 * (InferenceLedger with the NodeStaking / TeeRegistry test doubles until the real ones land), the
 * enclave and the relayer as separate processes (`opg enclave start`, `opg relayer start`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  Contract,
  ContractFactory,
  HDNodeWallet,
  JsonRpcProvider,
  NonceManager,
  Wallet,
  type InterfaceAbi,
} from "ethers";

import { ROOT, freePort } from "../helpers/processes.js";

const MNEMONIC = "test test test test test test test test test test test junk";
export const RISK_MLP = JSON.parse(
  readFileSync(path.join(ROOT, "models", "risk-mlp", "manifest.json"), "utf8"),
) as { modelId: string };
export const SEQ_CNN = JSON.parse(
  readFileSync(path.join(ROOT, "models", "seq-cnn", "manifest.json"), "utf8"),
) as { modelId: string };

function artifact(source: string, name: string): { abi: InterfaceAbi; bytecode: string } {
  return JSON.parse(readFileSync(path.join(ROOT, "artifacts", source, `${name}.json`), "utf8")) as {
    abi: InterfaceAbi;
    bytecode: string;
  };
}

export function account(index: number): Wallet {
  const w = HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(w.privateKey);
}

export interface System {
  provider: JsonRpcProvider;
  admin: NonceManager;
  adminAddress: string;
  ledger: Contract;
  staking: Contract;
  tee: Contract;
  token: Contract;
  gpuNode: string;
  nodeSigner: Wallet;
  txKey: Wallet;
  deployBlock: number;
}

async function deploy(
  admin: NonceManager,
  source: string,
  name: string,
  args: unknown[] = [],
): Promise<Contract> {
  const a = artifact(source, name);
  const c = await new ContractFactory(a.abi, a.bytecode, admin).deploy(...args);
  await c.waitForDeployment();
  return new Contract(await c.getAddress(), a.abi, admin);
}

export async function deploySystem(url: string): Promise<System> {
  const provider = new JsonRpcProvider(url, undefined, {
    staticNetwork: true,
    pollingInterval: 50,
  });
  const adminWallet = account(0).connect(provider);
  const admin = new NonceManager(adminWallet);
  const txKey = account(1);
  const token = await deploy(admin, "contracts/token/OPGToken.sol", "OPGToken", [
    adminWallet.address,
    10n ** 27n,
  ]);
  const staking = await deploy(admin, "contracts/mocks/MockNodeStaking.sol", "MockNodeStaking");
  const tee = await deploy(admin, "contracts/mocks/MockTeeRegistry.sol", "MockTeeRegistry");
  const registry = await deploy(admin, "contracts/registry/ModelRegistry.sol", "ModelRegistry");
  const deployBlock = await provider.getBlockNumber();
  const ledger = await deploy(admin, "contracts/anchoring/InferenceLedger.sol", "InferenceLedger", [
    adminWallet.address,
    await staking.getAddress(),
    await tee.getAddress(),
    await registry.getAddress(),
    await token.getAddress(),
  ]);
  await (await staking.getFunction("setSlasher")(await ledger.getAddress(), true)).wait();
  const nodeSigner = Wallet.createRandom() as unknown as Wallet;
  const gpuNode = Wallet.createRandom().address;
  await (
    await staking.getFunction("setNode")(gpuNode, 1, nodeSigner.address, true, 10n ** 22n)
  ).wait();
  for (const m of [RISK_MLP, SEQ_CNN]) {
    await (
      await registry.getFunction("registerModel")(
        m.modelId,
        "ipfs://m",
        m.modelId,
        [adminWallet.address],
        [10_000],
      )
    ).wait();
  }
  return {
    provider,
    admin,
    adminAddress: adminWallet.address,
    ledger,
    staking,
    tee,
    token,
    gpuNode,
    nodeSigner,
    txKey,
    deployBlock,
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
  ]);
  const address = String(proc.line.enclave);
  const verifierNode = Wallet.createRandom().address;
  await (
    await system.staking.getFunction("setNode")(verifierNode, 2, verifierNode, true, 10n ** 22n)
  ).wait();
  await (await system.tee.getFunction("setEnclave")(address, verifierNode, true)).wait();
  return { ...proc, url: String(proc.line.url), address };
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
  const config = {
    chain: {
      rpcUrl,
      chainId: 31337,
      ledger: await system.ledger.getAddress(),
      deployBlock: system.deployBlock,
      pollIntervalMs: 50,
    },
    node: { address: system.gpuNode },
    enclave: { url: enclaveUrl, sampleRate: 1 },
    models: { dir: path.join(ROOT, "models") },
    api: { port },
    batch: { maxSize: 256, maxAgeMs: 200 },
    listener: { confirmations: 1 },
    store: { path: path.join(d, "relayer.db") },
    log: { level: "warn" },
    ...overrides,
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

/**
 * Shared setup for the relayer's end-to-end tests and benchmark: a `hardhat node` with the whole
 * protocol deployed on it as production deploys it (offchain/deploy/system.ts: NodeStaking,
 * TeeRegistry with the development attestation verifier, ModelRegistry, InferenceLedger, governance
 * in the timelock); a GPU node and a TEE node staked in NodeStaking; the enclave image's measurement
 * approved through the timelock; the enclave (`opg enclave start`) registered in TeeRegistry with its
 * own attestation document; and the relayer (`opg relayer start`), each a separate process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { HDNodeWallet, JsonRpcProvider, NonceManager, Wallet, id } from "ethers";
import { network } from "hardhat";

import type {
  InferenceLedger,
  NodeStaking,
  OPGToken,
  TeeRegistry,
} from "../../types/ethers-contracts/index.js";
import { ROOT, freePort } from "../helpers/processes.js";
import { deployProtocol, type DeployOverrides, type Protocol } from "../helpers/protocol.js";
import { roleAccounts } from "../helpers/accounts.js";

export { RISK_MLP, SEQ_CNN, devMeasurement } from "../helpers/protocol.js";

const MNEMONIC = "test test test test test test test test test test test junk";

export function account(index: number): Wallet {
  const w = HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(w.privateKey);
}

export interface System extends Pick<
  Protocol,
  | "gpuNode"
  | "nodeSigner"
  | "teeSigner"
  | "teeNode"
  | "registerEnclave"
  | "renewEnclave"
  | "setSampleRate"
  | "deployBlock"
  | "deploymentDir"
> {
  provider: JsonRpcProvider;
  /** Account 0 (the deployer) behind a NonceManager, for the tests' own transactions. */
  admin: NonceManager;
  adminAddress: string;
  /** A requester of on-chain inferences with its own key, so requests never race account 0's proposals. */
  requester: NonceManager;
  ledger: InferenceLedger;
  staking: NodeStaking;
  tee: TeeRegistry;
  token: OPGToken;
  /** The relayer's transaction key (account 1). */
  txKey: Wallet;
  /** Governance: the governor, the token's votes, the timelock; and who proposes (account 0). */
  governance: Protocol["governanceHandles"];
  proposer: Protocol["proposer"];
  close: () => Promise<void>;
}

/** Deploys the protocol (test/helpers/protocol.ts) on the node at `url`. */
export async function deploySystem(url: string, overrides: DeployOverrides = {}): Promise<System> {
  const connection = await network.create({ network: "e2e", override: { url } });
  const p = await deployProtocol(connection, "e2e", overrides);
  const provider = new JsonRpcProvider(url, undefined, {
    staticNetwork: true,
    pollingInterval: 50,
  });
  const admin = new NonceManager(account(0).connect(provider));
  const { requester } = await roleAccounts(admin, provider, ["requester"]);
  return {
    provider,
    admin,
    requester: new NonceManager(requester),
    adminAddress: await p.deployer.getAddress(),
    ledger: p.ledger.connect(provider),
    staking: p.staking.connect(provider),
    tee: p.tee.connect(provider),
    token: p.token.connect(provider),
    gpuNode: p.gpuNode,
    nodeSigner: p.nodeSigner,
    teeSigner: p.teeSigner,
    txKey: account(1),
    teeNode: p.teeNode,
    registerEnclave: p.registerEnclave,
    renewEnclave: p.renewEnclave,
    setSampleRate: p.setSampleRate,
    deployBlock: p.deployBlock,
    deploymentDir: p.deploymentDir,
    governance: p.governanceHandles,
    proposer: p.proposer,
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
  options: {
    register?: boolean;
    /** The GPU node it serves (default: the system's). */
    node?: string;
    /** Registers its key with its attestation document (default: under the system's TEE node). */
    registerWith?: (enclave: string, document: Uint8Array) => Promise<void>;
  } = {},
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
    options.node ?? system.gpuNode,
    "--rpc",
    rpcUrl,
    // One development root per system, as all Nitro enclaves are under AWS's: restarts keep it.
    "--dev-root",
    path.join(system.deploymentDir, "enclave-dev-root.pem"),
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
  await (options.registerWith ?? system.registerEnclave)(
    address,
    Buffer.from(body.document, "base64"),
  );
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

/** Polls `fn` every `pollMs` until it answers non-null; fails naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | null>,
  timeoutMs = 60_000,
  pollMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
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

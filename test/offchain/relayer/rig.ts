/**
 * The relayer's anchoring path against a real chain: a `hardhat node` with the protocol deployed
 * (test/e2e/relayer-system.ts), an enclave in this process reading that chain over JSON-RPC and
 * registered in TeeRegistry, served over HTTP and used through the real EnclaveClient, and per test
 * a fresh store, TxSender (a fresh funded key), pipeline and batcher. Each test runs on a chain
 * snapshot, reverted afterwards, with a fresh enclave (its numbering follows the chain).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import type { Contract, JsonRpcProvider } from "ethers";

import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import { ledgerDomain, type LedgerDomain } from "../../../offchain/chain/eip712.js";
import { InferenceEngine } from "../../../offchain/inference/engine.js";
import { Batcher, type BatcherOptions } from "../../../offchain/relayer/batcher.js";
import { openDatabase } from "../../../offchain/relayer/db.js";
import { RelayerMetrics } from "../../../offchain/relayer/metrics.js";
import {
  InferencePipeline,
  httpRequestId,
  type PipelineOptions,
} from "../../../offchain/relayer/pipeline.js";
import { TxSender, type DoneCheck } from "../../../offchain/relayer/sender/index.js";
import { JobStore, type JobRecord } from "../../../offchain/relayer/store.js";
import { devProvider, fundedWallet } from "../../../offchain/relayer/testing/chain.js";
import type { TxSenderLike } from "../../../offchain/relayer/tx.js";
import { connectEnclaveChain, type EnclaveChain } from "../../../offchain/tee/chain-view.js";
import { EnclaveClient } from "../../../offchain/tee/client.js";
import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { Enclave, type EnclaveLimits } from "../../../offchain/tee/enclave.js";
import { createEnclaveServer, enclaveBodyLimit, listen } from "../../../offchain/tee/server.js";
import { RISK_MLP, deploySystem, riskInput, type System } from "../../e2e/relayer-system.js";
import { rpc, startHardhatNode, type HardhatNode } from "../../helpers/processes.js";
import { TestClock, silent } from "../tee/fixture.js";

export interface LocalEnclave {
  enclave: Enclave;
  client: EnclaveClient;
  close: () => Promise<void>;
}

export interface Rig {
  node: HardhatNode;
  system: System;
  chain: EnclaveChain;
  engine: InferenceEngine;
  domain: LedgerDomain;
  ledgerAddress: string;
  /** Per test (set by `setUp`). */
  t: TestParts;
}

export interface TestParts {
  clock: TestClock;
  dir: string;
  store: JobStore;
  sender: TxSender;
  /** The sender as the batcher sees it, recording the done checks registered with it. */
  senderLike: TxSenderLike;
  doneChecks: Map<string, DoneCheck>;
  /** The keys the batcher asked the sender to retry, in order. */
  retried: string[];
  metrics: RelayerMetrics;
  /** The enclave the relayer uses now (the batcher's `enclave()`). */
  current: LocalEnclave;
  enclaves: LocalEnclave[];
  nodeSigner: DigestSigner;
  provider: JsonRpcProvider;
}

/** Starts the node and deploys (before all). */
export async function rig(o: { modelsDir?: string } = {}): Promise<Rig> {
  const node = await startHardhatNode();
  const system = await deploySystem(node.url);
  const ledgerAddress = await system.ledger.getAddress();
  const chain = await connectEnclaveChain(node.url, 31337n, ledgerAddress);
  const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
  await engine.loadModelsDir(o.modelsDir ?? "models");
  return {
    node,
    system,
    chain,
    engine,
    domain: ledgerDomain(31337n, ledgerAddress),
    ledgerAddress,
    t: undefined as unknown as TestParts,
  };
}

export async function tearDown(r: Rig | undefined): Promise<void> {
  if (r === undefined) return;
  r.chain.close();
  await r.engine.close();
  await r.system.close();
  await r.node.stop();
}

/** Moves the clock up to the chain's latest block time. */
export async function syncClock(r: Rig): Promise<void> {
  const block = await r.system.provider.getBlock("latest");
  const t = BigInt(block!.timestamp);
  if (t > r.t.clock.t) r.t.clock.t = t;
}

/** Moves the chain's time forward by `seconds` (and the clock with it). */
export async function increaseTime(r: Rig, seconds: number | bigint): Promise<void> {
  await rpc(r.node.url, "evm_increaseTime", [Number(seconds)]);
  await rpc(r.node.url, "evm_mine");
  await syncClock(r);
}

/**
 * A started enclave serving the GPU node, over HTTP, registered in TeeRegistry (unless
 * `register: false`); `chain` replaces its view of the chain (a lying RPC).
 */
export async function localEnclave(
  r: Rig,
  o: {
    chain?: EnclaveChain;
    register?: boolean;
    limits?: Partial<EnclaveLimits>;
    /** The key the client signs its requests with (default: the node's signer). */
    signer?: DigestSigner;
    /** The server's body limit (default: what the largest model's receipt needs). */
    maxBodyBytes?: number;
  } = {},
): Promise<LocalEnclave> {
  const enclave = new Enclave({
    engine: r.engine,
    attestor: new DevAttestor(),
    chainId: 31337n,
    ledger: r.ledgerAddress,
    clientNode: r.system.gpuNode,
    chain: o.chain ?? r.chain,
    clock: r.t.clock,
    ...(o.limits !== undefined ? { limits: o.limits } : {}),
    log: silent,
  });
  await enclave.start();
  if (o.register !== false) {
    await r.system.registerEnclave(enclave.address, enclave.attestation(randomBytes(32)));
    await syncClock(r);
  }
  // The body limit the enclave CLI defaults to: what the largest model's receipt needs.
  const server = createEnclaveServer({
    enclave,
    clock: r.t.clock,
    maxBodyBytes: o.maxBodyBytes ?? enclaveBodyLimit(r.engine.list().map((m) => m.manifest)),
    logger: silent,
  });
  const url = await listen(server, 0);
  const client = new EnclaveClient({
    url,
    enclave: enclave.address,
    domain: r.domain,
    node: r.system.gpuNode,
    signer: o.signer ?? r.t.nodeSigner,
    clock: r.t.clock,
  });
  const local: LocalEnclave = {
    enclave,
    client,
    close: async () => {
      client.close();
      enclave.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  r.t.enclaves.push(local);
  return local;
}

/** Per-test parts on a fresh chain snapshot (beforeEach); returns the teardown (afterEach). */
export async function setUp(r: Rig): Promise<() => Promise<void>> {
  const snapshot = await rpc<string>(r.node.url, "evm_snapshot");
  const dir = await mkdtemp(path.join(tmpdir(), "opg-relayer-rig-"));
  const provider = devProvider(r.node.url);
  const store = new JobStore(openDatabase(path.join(dir, "relayer.db")));
  const sender = new TxSender({
    db: store.db,
    provider,
    signer: await fundedWallet(provider),
    confirmations: 1,
    pollIntervalMs: 50,
    revertInterface: r.system.ledger.interface,
    logger: silent,
  });
  const doneChecks = new Map<string, DoneCheck>();
  const retried: string[] = [];
  const senderLike: TxSenderLike = {
    submit: (intent) => sender.submit(intent),
    wait: (key) => sender.wait(key),
    retry: (key) => {
      retried.push(key);
      return sender.retry(key);
    },
    registerDoneCheck: (kind, check) => {
      doneChecks.set(kind, check);
      sender.registerDoneCheck(kind, check);
    },
    start: () => sender.start(),
    stop: () => sender.stop(),
  };
  const block = await r.system.provider.getBlock("latest");
  r.t = {
    clock: new TestClock(BigInt(block!.timestamp)),
    dir,
    store,
    sender,
    senderLike,
    doneChecks,
    retried,
    metrics: new RelayerMetrics(false),
    current: undefined as unknown as LocalEnclave,
    enclaves: [],
    nodeSigner: new DigestSigner(r.system.nodeSigner.privateKey),
    provider,
  };
  r.t.current = await localEnclave(r);
  sender.start();
  return async () => {
    await sender.stop();
    for (const e of r.t.enclaves) await e.close();
    store.db.close();
    provider.destroy();
    await rm(dir, { recursive: true, force: true });
    await rpc(r.node.url, "evm_revert", [snapshot]);
  };
}

/** A pipeline on the current enclave (or `enclave`), signing with `signer` (default the node's). */
export function pipeline(
  r: Rig,
  o: Partial<Pick<PipelineOptions, "corruptOutputs" | "onRejected">> & {
    signer?: DigestSigner;
    enclave?: () => LocalEnclave;
  } = {},
): InferencePipeline {
  return new InferencePipeline({
    engine: r.engine,
    nodeSigner: o.signer ?? r.t.nodeSigner,
    node: r.system.gpuNode,
    domain: r.domain,
    enclave: () => (o.enclave?.() ?? r.t.current).client,
    clock: r.t.clock,
    metrics: r.t.metrics,
    log: silent,
    ...(o.corruptOutputs !== undefined ? { corruptOutputs: o.corruptOutputs } : {}),
    ...(o.onRejected !== undefined ? { onRejected: o.onRejected } : {}),
  });
}

/** Runs HTTP-style jobs `keys` through `p` (not stored). */
export async function execute(p: InferencePipeline, r: Rig, keys: string[]): Promise<JobRecord[]> {
  return Promise.all(
    keys.map((key, i) =>
      p.execute({
        requestId: httpRequestId(r.system.gpuNode, key),
        modelId: RISK_MLP.modelId,
        inputs: riskInput(i + key.length),
        source: "http",
      }),
    ),
  );
}

/** Runs and stores HTTP-style jobs. */
export async function accept(r: Rig, keys: string[], p = pipeline(r)): Promise<JobRecord[]> {
  const jobs = await execute(p, r, keys);
  r.t.store.insertJobs(jobs);
  return jobs;
}

/** A batcher on the test's store, sender and current enclave (ticked by hand). */
export function batcher(r: Rig, o: Partial<BatcherOptions> = {}): Batcher {
  return new Batcher({
    store: r.t.store,
    enclave: () => r.t.current.client,
    sender: r.t.senderLike,
    ledger: r.system.ledger as unknown as Contract,
    provider: r.system.provider,
    maxSize: 100,
    maxAgeMs: 0,
    deployBlock: r.system.deployBlock,
    maxBlockRange: 1_000,
    pollMs: 50,
    retryBaseMs: 300,
    retryMaxMs: 1_200,
    metrics: r.t.metrics,
    log: silent,
    ...o,
  });
}

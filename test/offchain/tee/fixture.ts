/**
 * A real chain for the enclave's tests: the protocol deployed in process (`network.create()`,
 * test/helpers/protocol.ts), the enclave reading it through `enclaveChainOver`, a clock the test
 * moves (set to the chain's time), and honest receipts of the staked GPU node, signed by its signer.
 */
import { randomBytes } from "node:crypto";

import { keccak256, toBeHex } from "ethers";
import { network } from "hardhat";
import { pino } from "pino";

import type { Clock } from "../../../offchain/chain/clock.js";
import { DigestSigner } from "../../../offchain/chain/ecdsa.js";
import { ledgerDomain, type LedgerDomain, type Receipt } from "../../../offchain/chain/eip712.js";
import { LedgerHasher } from "../../../offchain/chain/hasher.js";
import {
  InferenceEngine,
  outputHash,
  outputsToJson,
  receiptFor,
  type LoadedModel,
  type QuantisedTensor,
  type QuantisedTensorJson,
  type TensorJson,
} from "../../../offchain/inference/index.js";
import { enclaveChainOver, type EnclaveChain } from "../../../offchain/tee/chain-view.js";
import { DevAttestor } from "../../../offchain/tee/devAttestation.js";
import { Enclave, type EnclaveLimits } from "../../../offchain/tee/enclave.js";
import { MODELS_DIR } from "../../../scripts/models/generate.js";
import { deployProtocol, type Protocol } from "../../helpers/protocol.js";
import { sampleInputs } from "../inference/reference.js";

export const silent = pino({ level: "silent" });

/** A clock the test sets; starts at the chain's latest block time. */
export class TestClock implements Clock {
  constructor(public t: bigint) {}
  now(): bigint {
    return this.t;
  }
  advance(seconds: number | bigint): void {
    this.t += BigInt(seconds);
  }
}

/** One receipt handed to the enclave's log (POST /v1/receipts item). */
export interface Item {
  receipt: Receipt;
  nodeSignature: string;
  inputs: Record<string, TensorJson>;
  outputs: QuantisedTensorJson[];
  force?: boolean;
}

export interface World {
  protocol: Protocol;
  chainId: bigint;
  ledger: string;
  chain: EnclaveChain;
  clock: TestClock;
  engine: InferenceEngine;
  risk: LoadedModel;
  cnn: LoadedModel;
  domain: LedgerDomain;
  hasher: LedgerHasher;
  /** The GPU node's signer key, as NodeStaking records it. */
  nodeSigner: DigestSigner;
  attestor: DevAttestor;
  /** A started enclave serving the GPU node (`register`: in TeeRegistry, so its batches anchor). */
  enclave(opts?: {
    limits?: Partial<EnclaveLimits>;
    register?: boolean;
    clientNode?: string;
    requireRegistration?: boolean;
    /** Another engine than the world's (e.g. one loaded from a folder with a broken model). */
    engine?: InferenceEngine;
  }): Promise<Enclave>;
  /** risk-mlp (or seq-cnn) inputs, deterministic in `seed`. */
  inputs(seed: number, model?: "risk" | "cnn"): Record<string, TensorJson>;
  /** An honest receipt of the GPU node over `inputs(seed)`, at the clock's time, signed by its signer. */
  item(seed: number, opts?: ItemOptions): Promise<Item>;
  /** Signs `receipt` with `signer` (default: the node's signer). */
  sign(receipt: Receipt, signer?: DigestSigner): string;
  /** Moves the clock up to the chain's latest block time. */
  sync(): Promise<void>;
  /**
   * Runs `fn` on a snapshot of the chain and the clock, restored afterwards (for tests that rotate
   * keys, slash, or move time through governance).
   */
  isolated<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface ItemOptions {
  requestId?: string;
  timestamp?: bigint;
  /** Added to the first output element (a GPU result off by this much; the receipt hashes it). */
  delta?: bigint;
  signer?: DigestSigner;
  node?: string;
  force?: boolean;
  /** risk-mlp (default) or seq-cnn. */
  model?: "risk" | "cnn";
}

/** Shifts the first element of the first tensor by `delta`. */
export function shifted(outputs: readonly QuantisedTensor[], delta: bigint): QuantisedTensor[] {
  return outputs.map((t, i) => {
    const values = BigInt64Array.from(t.values);
    if (i === 0) values[0] = (values[0] as bigint) + delta;
    return { ...t, values };
  });
}

export async function world(): Promise<World> {
  const connection = await network.create();
  const protocol = await deployProtocol(connection);
  const ledger = await protocol.ledger.getAddress();
  const { chainId } = await protocol.ethers.provider.getNetwork();
  const chain = await enclaveChainOver(protocol.ethers.provider, ledger);
  const clock = new TestClock(BigInt(await protocol.networkHelpers.time.latest()));
  const engine = new InferenceEngine({ config: { provider: "cpu" }, logger: silent });
  const [risk, cnn] = (await engine.loadModelsDir(MODELS_DIR)) as [LoadedModel, LoadedModel];
  const domain = ledgerDomain(chainId, ledger);
  const hasher = new LedgerHasher(domain);
  const nodeSigner = new DigestSigner(protocol.nodeSigner.privateKey);
  const attestor = new DevAttestor();
  const started: Enclave[] = [];
  const inputs = (seed: number, model: "risk" | "cnn" = "risk"): Record<string, TensorJson> =>
    model === "risk"
      ? { features: { dims: [1, 16], data: sampleInputs(seed, 16) } }
      : { signal: { dims: [1, 1, 32], data: sampleInputs(seed, 32) } };
  const sign = (receipt: Receipt, signer = nodeSigner): string =>
    signer.sign(hasher.receiptDigest(receipt));
  const sync = async (): Promise<void> => {
    const latest = BigInt(await protocol.networkHelpers.time.latest());
    if (latest > clock.t) clock.t = latest;
  };
  return {
    protocol,
    chainId,
    ledger,
    chain,
    clock,
    engine,
    risk,
    cnn,
    domain,
    hasher,
    nodeSigner,
    attestor,
    async enclave(opts = {}) {
      const enclave = new Enclave({
        engine: opts.engine ?? engine,
        attestor,
        chainId,
        ledger,
        clientNode: opts.clientNode ?? protocol.gpuNode,
        chain,
        clock,
        ...(opts.limits !== undefined ? { limits: opts.limits } : {}),
        ...(opts.requireRegistration === true ? { requireRegistration: true } : {}),
        log: silent,
      });
      await enclave.start();
      started.push(enclave);
      if (opts.register === true) {
        await protocol.registerEnclave(enclave.address, enclave.attestation(randomBytes(32)));
        await sync(); // its verdicts are dated after its registration
      }
      return enclave;
    },
    inputs,
    async item(seed, opts = {}) {
      const model = opts.model === "cnn" ? cnn : risk;
      const result = await engine.run(model.modelId, inputs(seed, opts.model));
      const outputs = shifted(result.outputs, opts.delta ?? 0n);
      const receipt = receiptFor(
        { ...result, outputHash: outputHash(outputs) },
        {
          requestId: opts.requestId ?? keccak256(toBeHex(seed, 32)),
          node: opts.node ?? protocol.gpuNode,
          timestamp: opts.timestamp ?? clock.now(),
        },
      );
      return {
        receipt,
        nodeSignature: sign(receipt, opts.signer),
        inputs: inputs(seed, opts.model),
        outputs: outputsToJson(outputs),
        ...(opts.force !== undefined ? { force: opts.force } : {}),
      };
    },
    sign,
    sync,
    async isolated(fn) {
      const snapshot = await protocol.networkHelpers.takeSnapshot();
      const t = clock.t;
      try {
        return await fn();
      } finally {
        await snapshot.restore();
        clock.t = t;
      }
    },
    async close() {
      for (const e of started) e.stop();
      chain.close();
      await engine.close();
      await connection.close();
    },
  };
}

/**
 * The GPU node's side of a request: infer → sign the receipt → have the enclave check it (sampled)
 * → a JobRecord ready to be stored. Nothing here writes to the store; JobWriter does (group commit).
 */
import { randomBytes } from "node:crypto";

import type { Wallet } from "ethers";
import type { Logger } from "pino";

import { DigestSigner } from "../chain/ecdsa.js";
import type { LedgerDomain } from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import type { InferenceEngine } from "../inference/engine.js";
import { receiptFor } from "../inference/receipt.js";
import {
  outputHash,
  outputsToJson,
  type QuantisedTensor,
  type QuantisedTensorJson,
  type TensorJson,
} from "../inference/tensor.js";
import type { NotSelected, SignedVerdict } from "../tee/enclave.js";
import type { RelayerMetrics } from "./metrics.js";
import type { JobRecord, JobSource } from "./store.js";

/** What the pipeline needs of the enclave (EnclaveClient implements it). */
export interface EnclaveVerifier {
  readonly enclave: string;
  verify(request: {
    receipt: JobRecord["receipt"];
    inputs: Record<string, TensorJson>;
    outputs?: QuantisedTensorJson[];
    sampleRate?: number;
  }): Promise<SignedVerdict | NotSelected>;
}

export interface PipelineOptions {
  engine: InferenceEngine;
  nodeSigner: Wallet;
  /** The GPU node id (NodeStaking) named in receipts. */
  node: string;
  domain: LedgerDomain;
  enclave: EnclaveVerifier;
  sampleRate: number;
  /** Debug: the node lies about every output (local chains only; see config.faultInjection). */
  corruptOutputs?: boolean;
  metrics: RelayerMetrics;
  log: Logger;
  /** Called with every job the enclave disagreed with (the service submits the evidence). */
  onRejected?: (job: JobRecord) => void;
}

export interface InferenceJob {
  requestId: string;
  modelId: string;
  inputs: Record<string, TensorJson>;
  source: JobSource;
  /** Re-execute regardless of sampling (on-chain requests: fulfil needs an agreeing verdict). */
  alwaysVerify?: boolean;
}

/** A fresh request id for an HTTP request without one. */
export function newRequestId(): string {
  return `0x${randomBytes(32).toString("hex")}`;
}

/** Shifts every value beyond any tolerance: what a lying GPU node would return. */
function corrupt(outputs: QuantisedTensor[]): QuantisedTensor[] {
  return outputs.map((t) => ({ ...t, values: t.values.map((v) => v + 1_000_000n) }));
}

export class InferencePipeline {
  private readonly hasher: LedgerHasher;
  private readonly signer: DigestSigner;

  constructor(private readonly options: PipelineOptions) {
    this.hasher = new LedgerHasher(options.domain);
    this.signer = new DigestSigner(options.nodeSigner.signingKey);
  }

  async execute(job: InferenceJob): Promise<JobRecord> {
    const { engine, metrics } = this.options;
    let result;
    try {
      result = await engine.runRow(job.modelId, job.inputs);
    } catch (error) {
      metrics.failures.inc({ stage: "infer" });
      throw error;
    }
    let outputs = result.outputs;
    let hash = result.outputHash;
    if (this.options.corruptOutputs === true) {
      outputs = corrupt(outputs);
      hash = outputHash(outputs);
    }
    const receipt = receiptFor(
      { ...result, outputHash: hash },
      {
        requestId: job.requestId.toLowerCase(),
        node: this.options.node,
        timestamp: BigInt(Math.floor(Date.now() / 1000)),
      },
    );
    const nodeSignature = this.signer.sign(this.hasher.receiptDigest(receipt));
    const outputsJson = outputsToJson(outputs);
    let check: SignedVerdict | NotSelected;
    try {
      check = await this.options.enclave.verify({
        receipt,
        inputs: job.inputs,
        outputs: outputsJson,
        ...(job.alwaysVerify === true ? {} : { sampleRate: this.options.sampleRate }),
      });
    } catch (error) {
      metrics.failures.inc({ stage: "enclave" });
      throw error;
    }
    const agree = check.selected ? check.verdict.agree : null;
    metrics.verifications.inc({
      result: agree === null ? "not_selected" : agree ? "agree" : "disagree",
    });
    if (agree === false) {
      this.options.log.warn(
        {
          at: "InferencePipeline#execute",
          requestId: receipt.requestId,
          enclaveOutputHash: check.selected ? check.verdict.outputHash : null,
          nodeOutputHash: receipt.outputHash,
        },
        "enclave disagrees with the node's output",
      );
    }
    const record: JobRecord = {
      requestId: receipt.requestId,
      source: job.source,
      receipt,
      nodeSignature,
      outputs: outputsJson,
      enclave: this.options.enclave.enclave,
      selected: check.selected,
      verdict: check.selected ? check.verdict : null,
      enclaveSignature: check.selected ? check.signature : null,
      state: agree === false ? "rejected" : "pending",
      createdAt: Date.now(),
    };
    if (record.state === "rejected") this.options.onRejected?.(record);
    return record;
  }
}

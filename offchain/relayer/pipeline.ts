/**
 * The GPU node's side of a request: infer → sign the receipt → hand it, with its inputs and
 * outputs, to the enclave's log (which draws the sample itself and re-executes the sampled ones) →
 * a JobRecord ready to be stored. Nothing here writes to the store; JobWriter does (group commit).
 *
 * Request ids: an on-chain request keeps the id the ledger gave it (keccak256(chainId, ledger,
 * nonce)); an HTTP request's id is derived from the client's idempotency key under a prefix of its
 * own (`httpRequestId`), so no client can choose an id that an on-chain request will have.
 */
import { randomBytes } from "node:crypto";

import { keccak256, toUtf8Bytes } from "ethers";
import type { Logger } from "pino";

import { keccak256 as nativeKeccak } from "../../native/index.js";
import type { Clock } from "../chain/clock.js";
import type { DigestSigner } from "../chain/ecdsa.js";
import type { LedgerDomain, Receipt } from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import { InputError } from "../common/errors.js";
import type { InferenceEngine } from "../inference/engine.js";
import type { ModelManifest } from "../inference/manifest.js";
import { receiptFor } from "../inference/receipt.js";
import {
  outputHash,
  outputsToJson,
  type QuantisedTensorJson,
  type QuantisedTensor,
  type TensorJson,
} from "../inference/tensor.js";
import { EnclaveRequestError, type SubmitRequest } from "../tee/client.js";
import type { LoggedReceipt } from "../tee/enclave.js";
import type { RelayerMetrics } from "./metrics.js";
import type { JobRecord, JobSource } from "./store.js";

/** What the pipeline needs of the enclave (EnclaveClient implements it). */
export interface EnclaveLog {
  readonly enclave: string;
  submit(request: SubmitRequest): Promise<LoggedReceipt>;
  logged(
    requestId: string,
  ): Promise<(LoggedReceipt & { receipt: Receipt; nodeSignature: string }) | null>;
}

export interface PipelineOptions {
  engine: InferenceEngine;
  nodeSigner: DigestSigner;
  /** The GPU node id (NodeStaking) named in receipts. */
  node: string;
  domain: LedgerDomain;
  enclave: () => EnclaveLog;
  /**
   * Asked when the enclave refuses this relayer's credentials (401/403): it may have restarted with
   * a new key, which the relayer has not checked yet. Resolves once the enclave at the URL is
   * checked again; the receipt is then sent once more to whichever enclave is in use.
   */
  refreshEnclave?: () => Promise<void>;
  /**
   * Reads the chain's time again (a clock that follows a local chain), asked when the enclave finds
   * a receipt's timestamp outside its window: the receipt is then dated and signed anew, once.
   */
  resyncClock?: () => Promise<void>;
  clock: Clock;
  /** Debug: the node lies about every output (local chains only; see config.faultInjection). */
  corruptOutputs?: boolean;
  metrics: RelayerMetrics;
  log: Logger;
  /** Called with every job the enclave disagreed with. */
  onRejected?: (job: JobRecord) => void;
}

export interface InferenceJob {
  requestId: string;
  modelId: string;
  inputs: Record<string, TensorJson>;
  source: JobSource;
  /** Re-execute regardless of sampling (on-chain requests: fulfil needs an agreeing verdict). */
  force?: boolean;
}

const HTTP_REQUEST_TAG = keccak256(toUtf8Bytes("OPG HTTP request v1"));
const HTTP_REQUEST_TAG_BYTES = Buffer.from(HTTP_REQUEST_TAG.slice(2), "hex");

/**
 * The request id of an HTTP request: keccak256(abi.encode(tag, node, keccak256(key))). A client that
 * sends the same idempotency key to the same node gets the same request (and receipt) back.
 */
export function httpRequestId(node: string, idempotencyKey: string): string {
  // The three 32-byte words of abi.encode, hashed with native keccak: on every HTTP request, where
  // ethers' ABI coder and JavaScript keccak took ~8 % of the relayer's CPU in its profile.
  if (!/^0x[0-9a-fA-F]{40}$/.test(node))
    throw new InputError("node is not a 20-byte hex address", { details: { node } });
  const words = Buffer.alloc(96);
  HTTP_REQUEST_TAG_BYTES.copy(words, 0);
  words.write(node.slice(2), 44, "hex");
  Buffer.from(nativeKeccak(Buffer.from(idempotencyKey, "utf8"))).copy(words, 64);
  return `0x${Buffer.from(nativeKeccak(words)).toString("hex")}`;
}

/** A fresh idempotency key for an HTTP request without one. */
export function newIdempotencyKey(): string {
  return randomBytes(16).toString("hex");
}

/** Shifts every value beyond any tolerance: what a lying GPU node would return. */
function corrupt(outputs: QuantisedTensor[]): QuantisedTensor[] {
  return outputs.map((t) => ({ ...t, values: t.values.map((v) => v + 1_000_000n) }));
}

/**
 * Adds to each recurrent-state output (manifest `state: true`) its float32 values as the model
 * returned them, next to the quantised ones, so a client feeds back exactly the state the next
 * call needs (docs/inference-tee.md, "Recurrent state"). Only the quantised values are hashed.
 */
function withState(
  outputs: QuantisedTensorJson[],
  raw: Record<string, Float32Array>,
  manifest: ModelManifest,
): QuantisedTensorJson[] {
  const state = new Set(manifest.outputs.filter((o) => o.state === true).map((o) => o.name));
  if (state.size === 0) return outputs;
  return outputs.map((t) => {
    const values = raw[t.name];
    return state.has(t.name) && values !== undefined ? { ...t, state: Array.from(values) } : t;
  });
}

export class InferencePipeline {
  private readonly hasher: LedgerHasher;

  constructor(private readonly options: PipelineOptions) {
    this.hasher = new LedgerHasher(options.domain);
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
    const outputsJson = outputsToJson(outputs);
    let receipt = receiptFor(
      { ...result, outputHash: hash },
      {
        requestId: job.requestId.toLowerCase(),
        node: this.options.node,
        timestamp: this.options.clock.now(),
      },
    );
    let nodeSignature = this.options.nodeSigner.sign(this.hasher.receiptDigest(receipt));
    let enclave = this.options.enclave();
    let item = {
      receipt,
      nodeSignature,
      inputs: job.inputs,
      outputs: outputsJson,
      ...(job.force === true ? { force: true } : {}),
    };
    let logged: LoggedReceipt;
    try {
      try {
        try {
          logged = await enclave.submit(item);
        } catch (error) {
          const stale =
            error instanceof EnclaveRequestError &&
            error.status === 422 &&
            error.details.error === "StaleReceiptError";
          if (!stale || this.options.resyncClock === undefined) throw error;
          // Our clock lags the chain's (a local chain's time just jumped): dated and signed anew.
          await this.options.resyncClock();
          receipt = { ...receipt, timestamp: this.options.clock.now() };
          nodeSignature = this.options.nodeSigner.sign(this.hasher.receiptDigest(receipt));
          item = { ...item, receipt, nodeSignature };
          logged = await enclave.submit(item);
        }
      } catch (error) {
        const refused =
          error instanceof EnclaveRequestError && (error.status === 401 || error.status === 403);
        if (!refused || this.options.refreshEnclave === undefined) throw error;
        // A restarted enclave (a new key) refuses requests signed for the old one until the
        // relayer has checked it; once checked, the receipt goes to it. Still refused: the error.
        await this.options.refreshEnclave();
        if (this.options.enclave() === enclave) throw error;
        enclave = this.options.enclave();
        logged = await enclave.submit(item);
      }
    } catch (error) {
      // The enclave already logged a receipt for this request (this relayer crashed between the
      // enclave's answer and its own write, and the client retried): that receipt is the answer,
      // as long as it is the same output (the node never signs two for one question).
      const prior =
        error instanceof EnclaveRequestError && error.status === 409
          ? await enclave.logged(receipt.requestId)
          : null;
      if (prior === null || prior.receipt.outputHash.toLowerCase() !== hash.toLowerCase()) {
        metrics.failures.inc({ stage: "enclave" });
        throw error;
      }
      receipt = prior.receipt;
      nodeSignature = prior.nodeSignature;
      logged = prior;
    }
    const agree = logged.verdict === null ? null : logged.verdict.agree;
    metrics.verifications.inc({
      result: agree === null ? "not_selected" : agree ? "agree" : "disagree",
    });
    if (agree === false) {
      this.options.log.warn(
        {
          at: "InferencePipeline#execute",
          requestId: receipt.requestId,
          enclaveOutputHash: logged.verdict?.outputHash,
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
      inputs: job.inputs,
      outputs: withState(outputsJson, result.raw, engine.get(job.modelId).manifest),
      enclave: enclave.enclave,
      selected: logged.selected,
      verdict: logged.verdict,
      enclaveSignature: logged.signature,
      state: agree === false ? "rejected" : "pending",
      createdAt: Date.now(),
    };
    if (record.state === "rejected") this.options.onRejected?.(record);
    return record;
  }
}

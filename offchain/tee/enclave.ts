/**
 * The enclave: it serves one GPU node (its client), keeps a log of every receipt that node sends it,
 * re-executes a sample of them on CPU, and builds and signs the batches itself. It vouches only for
 * what it checked:
 *
 *   - a receipt is logged only if it names the client node, is signed by the node's signer key (as
 *     NodeStaking records it), is fresh (its timestamp within `receiptWindowSeconds` of the enclave's
 *     clock), and comes with inputs and outputs that hash to the receipt's inputHash and outputHash;
 *   - the sample is drawn only then, after the node signed, from a secret that never leaves the
 *     enclave, at the rate governance set on chain (InferenceLedger.sampleRate); the draw is binding:
 *     whatever it says, the receipt is in the log and, unless contradicted, in a batch;
 *   - a sampled receipt is re-executed and judged with the model's tolerance on the actual outputs;
 *     one verdict per receipt, ever (a repeat returns the stored one); a disagreeing verdict is
 *     evidence, published on GET /evidence for anyone to report, and the receipt is never batched;
 *   - a second receipt for a request already logged is refused; if it answers the same question
 *     with another output, the two are double-receipt evidence;
 *   - every batch is cut from the log by the enclave: root, count, usage, re-executed count and the
 *     sequence number are its own; the batch names the node and its signer key, and `asOf`, the
 *     enclave's clock at the latest receipt in it, at which that key was the node's signer.
 *
 * The signing key (an Ethereum secp256k1 key, the enclave key registered on chain) is created inside
 * and never leaves. Attestation binding: public_key = the uncompressed public key (65 bytes) and
 * user_data = address (20) || chainId (32, big-endian) || ledger (20) || client node (20).
 *
 * State is bounded: `maxEntries` logged receipts (an entry is dropped once batched or rejected and
 * its receipt's date and its logging are older than the receipt window, after which its receipt
 * would be refused as stale anyway),
 * `maxOpenBatches` signed batches not yet anchored, `maxEvidence` evidence records.
 */
import { randomBytes } from "node:crypto";

import {
  Wallet,
  computeAddress,
  concat,
  getAddress,
  getBytes,
  hexlify,
  toBeHex,
  zeroPadValue,
} from "ethers";
import type { Logger } from "pino";
import { pino } from "pino";

import { buildTreeFromHashes } from "../../native/index.js";
import { BaseError, InputError, VerificationError } from "../common/errors.js";
import type { Clock } from "../chain/clock.js";
import { DigestSigner, recoverSigner } from "../chain/ecdsa.js";
import {
  ledgerDomain,
  usageHash,
  type Batch,
  type LedgerDomain,
  type Receipt,
  type Verdict,
} from "../chain/eip712.js";
import { LedgerHasher, receiptLeafHash } from "../chain/hasher.js";
import { usageSummary } from "../chain/receipts.js";
import type { InferenceEngine, LoadedModel } from "../inference/engine.js";
import { scaleOf, tolerancesOf, type OutputTolerance } from "../inference/manifest.js";
import {
  compareOutputs,
  inputHash,
  outputHash,
  outputsFromJson,
  validateInputs,
  type InputTensor,
  type QuantisedTensor,
} from "../inference/tensor.js";
import { ForbiddenError } from "./auth.js";
import type { EnclaveChain } from "./chain-view.js";
import type { AttestationRequest } from "./devAttestation.js";
import { isSelected } from "./sampling.js";
import { parseWith, submitItemSchema } from "./schemas.js";

/** Issues attestation documents (DevAttestor here; the Nitro NSM device inside a real enclave). */
export interface Attestor {
  attest(request: AttestationRequest): Buffer;
}

export class InputMismatchError extends VerificationError {
  override name = "InputMismatchError";
}

/** A receipt whose timestamp is outside the enclave's window (422). */
export class StaleReceiptError extends VerificationError {
  override name = "StaleReceiptError";
}

/** Another receipt is logged for this request (409). */
export class DuplicateRequestError extends BaseError {
  override name = "DuplicateRequestError";
  override readonly httpStatus: number = 409;
}

/**
 * The enclave's key is not registered in TeeRegistry (yet): what it signed now would answer for
 * nothing (TeeRegistry.accountableNodeOf is zero before registeredAt), so it logs nothing (503).
 */
export class EnclaveNotRegisteredError extends BaseError {
  override name = "EnclaveNotRegisteredError";
  override readonly httpStatus: number = 503;
}

/**
 * Another relayer of the client node holds this enclave (409): its batches would list receipts the
 * second relayer's store never wrote, and the second relayer's receipts would be anchored by the
 * first one without its knowing. One relayer (one store) per enclave; see `admitRelayer`.
 */
export class RelayerConflictError extends BaseError {
  override name = "RelayerConflictError";
  override readonly httpStatus: number = 409;
}

/** The enclave's bounded state is full; the client must cut batches or slow down (503). */
export class EnclaveBusyError extends BaseError {
  override name = "EnclaveBusyError";
  override readonly httpStatus: number = 503;
}

export interface EnclaveLimits {
  /** Receipts further than this from the enclave's clock are refused; also the dedup horizon. */
  receiptWindowSeconds: number;
  /** Logged receipts kept at once. */
  maxEntries: number;
  /** Signed batches not yet anchored kept at once. */
  maxOpenBatches: number;
  /** Most receipts in one batch. */
  maxBatchSize: number;
  /** Evidence records kept for GET /evidence. */
  maxEvidence: number;
  /** How often the client's signer, the sample rate and the anchored sequence are re-read. */
  refreshMs: number;
  /**
   * How long a relayer holds the enclave after its last request: another relayer (another
   * `x-opg-relayer` id) is refused until then (RelayerConflictError).
   */
  relayerLeaseMs: number;
}

export const DEFAULT_ENCLAVE_LIMITS: EnclaveLimits = {
  receiptWindowSeconds: 120,
  maxEntries: 250_000,
  maxOpenBatches: 64,
  maxBatchSize: 65_536,
  maxEvidence: 10_000,
  refreshMs: 5_000,
  relayerLeaseMs: 60_000,
};

export interface EnclaveOptions {
  engine: InferenceEngine;
  attestor: Attestor;
  chainId: bigint;
  ledger: string;
  /** The GPU node (NodeStaking id) this enclave serves: its only client. */
  clientNode: string;
  chain: EnclaveChain;
  clock: Clock;
  limits?: Partial<EnclaveLimits>;
  /**
   * Log receipts only once this enclave's key is registered in TeeRegistry and its clock has
   * reached the registration's time, so every verdict and batch it signs is one its key answers
   * for (`opg enclave start` sets it; needs `chain.registeredAtOf`).
   */
  requireRegistration?: boolean;
  log?: Logger;
}

/** What the enclave answers for a receipt it logged (or had logged before: `duplicate`). */
export interface LoggedReceipt {
  requestId: string;
  receiptDigest: string;
  enclave: string;
  /** Whether the enclave re-executes this receipt (its own draw, or forced for on-chain requests). */
  selected: boolean;
  /** The rate the draw was made at, parts per million. */
  sampleRatePpm: number;
  verdict: Verdict | null;
  signature: string | null;
  /** Largest per-element difference from the GPU output (quantised units), when re-executed. */
  maxDiff: string | null;
  where: string | null;
  duplicate: boolean;
}

/** One answer of `submit`: the logged receipt, or the error that item alone answers. */
export type SubmitOutcome =
  | { ok: true; result: LoggedReceipt }
  | {
      ok: false;
      status: number;
      error: string;
      message: string;
      details: Record<string, unknown>;
    };

export interface SignedBatch {
  batch: Batch;
  digest: string;
  signature: string;
  /** The receipts' request ids in leaf order, and their leaf hashes. */
  requestIds: string[];
  leafHashes: string[];
  modelIds: string[];
  counts: number[];
}

export type EvidenceRecord =
  | {
      index: number;
      kind: "contradicted";
      receipt: Receipt;
      nodeSignature: string;
      verdict: Verdict;
      enclaveSignature: string;
    }
  | {
      index: number;
      kind: "double-receipt";
      a: { receipt: Receipt; nodeSignature: string };
      b: { receipt: Receipt; nodeSignature: string };
    };

interface Entry {
  requestId: string;
  receipt: Receipt;
  receiptHash: string;
  digest: string;
  leafHash: string;
  nodeSignature: string;
  signer: string;
  loggedAt: bigint;
  sampleRatePpm: number;
  selected: boolean;
  verdict: Verdict | null;
  verdictSignature: string | null;
  maxDiff: string | null;
  where: string | null;
  state: "pending" | "batched" | "rejected";
  /** Settles when the re-execution of a selected receipt is over (a repeat waits for its verdict). */
  judged: Promise<void> | null;
}

/** user_data layout: address (20) || chainId (32, big-endian) || ledger (20) || client node (20). */
export function bindingUserData(
  address: string,
  chainId: bigint,
  ledger: string,
  clientNode: string,
): Uint8Array {
  return getBytes(
    concat([
      getAddress(address),
      zeroPadValue(toBeHex(chainId), 32),
      getAddress(ledger),
      getAddress(clientNode),
    ]),
  );
}

/** Reads an attestation's binding back: the address in user_data must be the public_key's address. */
export function readBinding(
  publicKey: Uint8Array | null,
  userData: Uint8Array | null,
): { address: string; chainId: bigint; ledger: string; clientNode: string } {
  if (
    publicKey === null ||
    publicKey.length !== 65 ||
    userData === null ||
    userData.length !== 92
  ) {
    throw new VerificationError(
      "attestation does not bind an enclave key (public_key 65 bytes, user_data 92 bytes expected)",
      {
        details: { publicKeyLength: publicKey?.length ?? 0, userDataLength: userData?.length ?? 0 },
      },
    );
  }
  const address = computeAddress(hexlify(publicKey));
  const bound = getAddress(hexlify(userData.subarray(0, 20)));
  if (bound !== address) {
    throw new VerificationError("user_data address is not the attested public key's address", {
      details: { publicKeyAddress: address, userDataAddress: bound },
    });
  }
  return {
    address,
    chainId: BigInt(hexlify(userData.subarray(20, 52))),
    ledger: getAddress(hexlify(userData.subarray(52, 72))),
    clientNode: getAddress(hexlify(userData.subarray(72, 92))),
  };
}

const sameAddress = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

export class Enclave {
  readonly domain: LedgerDomain;
  readonly clientNode: string;
  readonly limits: EnclaveLimits;
  readonly #wallet: Wallet;
  readonly #signer: DigestSigner;
  readonly #hasher: LedgerHasher;
  readonly #secret: Uint8Array;
  readonly #engine: InferenceEngine;
  readonly #attestor: Attestor;
  readonly #chain: EnclaveChain;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Every logged receipt not yet dropped, by request id, in the order logged. */
  readonly #entries = new Map<string, Entry>();
  /** Logged receipts waiting for a batch, oldest first (entries may have left the pending state). */
  #pending: Entry[] = [];
  #pendingHead = 0;
  /** Signed batches not yet seen anchored, by sequence. */
  readonly #open = new Map<bigint, SignedBatch>();
  readonly #evidence: EvidenceRecord[] = [];
  #evidenceCount = 0;
  #nextSequence = 0n;
  /** The relayer holding the enclave and when its last request came (admitRelayer). */
  #relayer: { id: string; seenMs: number } | null = null;
  #clientSigner = "";
  #signerReadAt = 0;
  readonly #requireRegistration: boolean;
  /** TeeRegistry's registeredAt for this key, once read non-zero. */
  #registeredAt: bigint | null = null;
  #registrationReadAt = 0;
  #registrationRead: Promise<void> | null = null;
  #sampleRatePpm = 1_000_000;
  #timer: NodeJS.Timeout | undefined;
  #cutting: Promise<void> = Promise.resolve();
  #counts = { logged: 0, reexecuted: 0, contradicted: 0, refused: 0, batches: 0 };

  constructor(options: EnclaveOptions) {
    if (options.engine.provider !== "cpu") {
      throw new InputError("the enclave re-executes on cpu; give it an engine with provider cpu", {
        details: { provider: options.engine.provider },
      });
    }
    this.#engine = options.engine;
    this.#attestor = options.attestor;
    this.#chain = options.chain;
    this.#clock = options.clock;
    this.#requireRegistration = options.requireRegistration === true;
    if (this.#requireRegistration && options.chain.registeredAtOf === undefined) {
      throw new InputError("requireRegistration needs a chain view that reads TeeRegistry");
    }
    this.#log = options.log ?? pino({ enabled: false });
    this.limits = { ...DEFAULT_ENCLAVE_LIMITS, ...options.limits };
    this.clientNode = getAddress(options.clientNode);
    this.domain = ledgerDomain(options.chainId, getAddress(options.ledger));
    this.#wallet = new Wallet(hexlify(randomBytes(32)));
    this.#signer = new DigestSigner(this.#wallet.signingKey);
    this.#hasher = new LedgerHasher(this.domain);
    this.#secret = randomBytes(32);
  }

  /** Reads the client's signer, the sample rate and the anchored sequence, then keeps them fresh. */
  async start(): Promise<void> {
    await this.refresh();
    this.#nextSequence = await this.#chain.nextSequenceOf(this.address);
    this.#timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.#log.warn(
          { at: "Enclave#refresh", err: (error as Error).message },
          "chain read failed",
        ),
      );
    }, this.limits.refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Re-reads the chain; drops the open batches it has seen anchored. */
  async refresh(): Promise<void> {
    await this.#readSigner();
    this.#sampleRatePpm = await this.#chain.sampleRatePpm();
    if (this.#open.size > 0) {
      const anchored = await this.#chain.nextSequenceOf(this.address);
      for (const sequence of [...this.#open.keys()]) {
        if (sequence < anchored) this.#open.delete(sequence);
      }
    }
  }

  async #readSigner(): Promise<void> {
    this.#clientSigner = await this.#chain.signerOf(this.clientNode);
    this.#signerReadAt = Date.now();
  }

  get address(): string {
    return this.#wallet.address;
  }

  /** Uncompressed secp256k1 public key (0x04 || x || y). */
  get publicKey(): Uint8Array {
    return getBytes(this.#wallet.signingKey.publicKey);
  }

  get userData(): Uint8Array {
    return bindingUserData(
      this.address,
      this.domain.chainId,
      this.domain.verifyingContract,
      this.clientNode,
    );
  }

  get sampleRatePpm(): number {
    return this.#sampleRatePpm;
  }

  /**
   * The loaded models and how each output is judged (`tolerance`: the manifest's single number,
   * null when every output has its own; `outputs`: each output's resolved scale and tolerance).
   */
  get models(): Array<{
    modelId: string;
    name: string;
    tolerance: number | null;
    outputScale: number;
    outputs: Record<string, { scale: number; tolerance: OutputTolerance }>;
  }> {
    return this.#engine.list().map((m) => {
      const tolerances = tolerancesOf(m.manifest);
      const outputs: Record<string, { scale: number; tolerance: OutputTolerance }> = {};
      for (const spec of m.manifest.outputs) {
        outputs[spec.name] = {
          scale: scaleOf(m.manifest, spec),
          tolerance: tolerances[spec.name] as OutputTolerance,
        };
      }
      return {
        modelId: m.modelId,
        name: m.manifest.name,
        tolerance: m.manifest.tolerance ?? null,
        outputScale: m.manifest.outputScale,
        outputs,
      };
    });
  }

  /** Model folders that did not load (published on /info so a missing model is explained). */
  get modelFailures(): Array<{ dir: string; error: string; message: string }> {
    return this.#engine.failures.map(({ dir, error, message }) => ({ dir, error, message }));
  }

  /** Counters and sizes of the bounded state (for GET /info and the tests). */
  stats(): Record<string, number> {
    return {
      ...this.#counts,
      entries: this.#entries.size,
      pending: this.#pending.length - this.#pendingHead,
      openBatches: this.#open.size,
      evidence: this.#evidence.length,
      nextSequence: Number(this.#nextSequence),
    };
  }

  /** The relayer holding this enclave (see `admitRelayer`), or null. */
  relayer(nowMs = Date.now()): { id: string; idleMs: number; leaseMs: number } | null {
    if (this.#relayer === null) return null;
    return {
      id: this.#relayer.id,
      idleMs: nowMs - this.#relayer.seenMs,
      leaseMs: this.limits.relayerLeaseMs,
    };
  }

  /**
   * Admits a request of the relayer named `id` (its `x-opg-relayer` header, after the request was
   * shown to come from the client node). The first relayer holds the enclave, each of its requests
   * renewing the lease; another one is refused with RelayerConflictError until the holder has been
   * silent for `relayerLeaseMs`, and then takes over. This guards the node's own relayers against
   * sharing an enclave by mistake (they hold the same key, so it is no boundary against the node).
   */
  admitRelayer(id: string, nowMs = Date.now()): void {
    const held = this.#relayer;
    if (held !== null && held.id !== id && nowMs - held.seenMs < this.limits.relayerLeaseMs) {
      throw new RelayerConflictError(
        `enclave ${this.address} is held by relayer ${held.id} (last request ${Math.round((nowMs - held.seenMs) / 1000)} s ago); one relayer per enclave: stop the other relayer, or wait ${Math.ceil((this.limits.relayerLeaseMs - (nowMs - held.seenMs)) / 1000)} s after it stopped`,
        {
          details: {
            relayer: id,
            holder: held.id,
            idleMs: nowMs - held.seenMs,
            leaseMs: this.limits.relayerLeaseMs,
          },
        },
      );
    }
    if (held !== null && held.id !== id) {
      this.#log.warn(
        { at: "Enclave#admitRelayer", from: held.id, to: id, idleMs: nowMs - held.seenMs },
        "another relayer takes over this enclave (the holder's lease lapsed)",
      );
    }
    this.#relayer = { id, seenMs: nowMs };
  }

  /** Frees the enclave if relayer `id` holds it (it stopped cleanly); true when it did. */
  releaseRelayer(id: string): boolean {
    if (this.#relayer === null || this.#relayer.id !== id) return false;
    this.#relayer = null;
    return true;
  }

  /** An attestation document binding this enclave's key, answering `nonce`. */
  attestation(nonce: Uint8Array): Buffer {
    if (nonce.length < 8 || nonce.length > 64) {
      throw new InputError(`nonce must be 8..64 bytes, got ${nonce.length}`, {
        details: { length: nonce.length },
      });
    }
    return this.#attestor.attest({ nonce, publicKey: this.publicKey, userData: this.userData });
  }

  /**
   * Checks that `signer` (who signed an authenticated request) is the client node's signer key; the
   * key is re-read from the chain when it does not match (a rotation), at most once a second.
   */
  async checkClient(signer: string, what = "the request"): Promise<void> {
    if (sameAddress(signer, this.#clientSigner)) return;
    if (Date.now() - this.#signerReadAt > 1_000) await this.#readSigner();
    if (!sameAddress(signer, this.#clientSigner)) {
      // A request signed for another enclave (this one restarted with a new key) recovers to an
      // unrelated address too: the message names this enclave, so the client knows to check it.
      throw new ForbiddenError(
        `${what} is not signed by node ${this.clientNode}'s signer (this is enclave ${this.address})`,
        { details: { signer, clientNode: this.clientNode } },
      );
    }
  }

  /**
   * Logs receipts (see the file's comment). Each item is judged on its own: a bad one answers its
   * own error and does not affect the others.
   */
  async submit(items: unknown[]): Promise<SubmitOutcome[]> {
    this.#prune();
    return Promise.all(
      items.map(async (raw, index): Promise<SubmitOutcome> => {
        try {
          return { ok: true, result: await this.#submitOne(raw, index) };
        } catch (error) {
          if (!(error instanceof BaseError)) throw error;
          this.#counts.refused++;
          return {
            ok: false,
            status: error.httpStatus,
            error: error.name,
            message: error.message,
            details: error.details,
          };
        }
      }),
    );
  }

  /**
   * With requireRegistration: resolves once this key is registered and the enclave's clock has
   * reached registeredAt (a chain's block times can run a second or two ahead of a clock that
   * follows them), so nothing is signed at a time the key answers for nothing.
   */
  async #registered(): Promise<void> {
    if (!this.#requireRegistration) return;
    if (this.#registeredAt === null) {
      // One read at a time, at most one a second, shared by the receipts that wait on it.
      if (this.#registrationRead === null && Date.now() - this.#registrationReadAt > 1_000) {
        this.#registrationReadAt = Date.now();
        this.#registrationRead = this.#chain.registeredAtOf!(this.address)
          .then((at) => {
            if (at > 0n) this.#registeredAt = at;
          })
          .catch(() => undefined) // an RPC that does not answer: not known to be registered
          .finally(() => (this.#registrationRead = null));
      }
      await this.#registrationRead;
      if (this.#registeredAt === null) {
        throw new EnclaveNotRegisteredError(
          `enclave ${this.address} is not registered in TeeRegistry yet (or its RPC did not answer): it logs no receipt before it is`,
          { details: { enclave: this.address } },
        );
      }
    }
    const deadline = Date.now() + 5_000;
    while (this.#clock.now() < this.#registeredAt && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (this.#clock.now() < this.#registeredAt) {
      throw new EnclaveNotRegisteredError(
        `enclave ${this.address} was registered at ${this.#registeredAt}, after its clock (${this.#clock.now()})`,
        { details: { enclave: this.address, registeredAt: this.#registeredAt } },
      );
    }
  }

  async #submitOne(raw: unknown, index: number): Promise<LoggedReceipt> {
    const item = parseWith(submitItemSchema, raw, `receipt ${index}`);
    const { receipt } = item;
    const requestId = receipt.requestId.toLowerCase();
    await this.#registered();
    const now = this.#clock.now();

    // The client's receipt, fresh, signed by its signer key.
    if (!sameAddress(receipt.node, this.clientNode)) {
      throw new ForbiddenError(`this enclave serves node ${this.clientNode} only`, {
        details: { receiptNode: receipt.node },
      });
    }
    const window = BigInt(this.limits.receiptWindowSeconds);
    const age = now > receipt.timestamp ? now - receipt.timestamp : receipt.timestamp - now;
    if (age > window) {
      throw new StaleReceiptError("receipt timestamp is outside the enclave's window", {
        details: { timestamp: receipt.timestamp, enclaveTime: now, windowSeconds: window },
      });
    }
    const receiptHash = this.#hasher.receiptStructHash(receipt);
    const digest = this.#hasher.receiptDigest(receipt);
    const signer = recoverSigner(digest, item.nodeSignature);
    await this.checkClient(signer, "the receipt");

    // One receipt per request, ever: a repeat returns what was logged.
    const existing = this.#entries.get(requestId);
    if (existing !== undefined) {
      if (existing.receiptHash === receiptHash) {
        // Its re-execution's failure was answered to the first submission.
        await existing.judged?.catch(() => undefined);
        return this.#answer(existing, true);
      }
      this.#doubleReceipt(existing, receipt, item.nodeSignature);
      throw new DuplicateRequestError(`request ${requestId} already has a logged receipt`, {
        details: { requestId, loggedReceiptDigest: existing.digest, receiptDigest: digest },
      });
    }

    // Inputs and outputs that are the receipt's.
    const model = this.#engine.get(receipt.modelId);
    const tensors = validateInputs(model.manifest, item.inputs);
    const computedInputHash = inputHash(tensors);
    if (computedInputHash !== receipt.inputHash.toLowerCase()) {
      throw new InputMismatchError("inputs do not hash to the receipt's inputHash", {
        details: { receiptInputHash: receipt.inputHash, computedInputHash },
      });
    }
    const gpuOutputs = outputsFromJson(model.manifest, item.outputs);
    const computedOutputHash = outputHash(gpuOutputs);
    if (computedOutputHash !== receipt.outputHash.toLowerCase()) {
      throw new InputMismatchError("outputs do not hash to the receipt's outputHash", {
        details: { receiptOutputHash: receipt.outputHash, computedOutputHash },
      });
    }
    if (this.#entries.size >= this.limits.maxEntries) {
      throw new EnclaveBusyError("the enclave's receipt log is full: cut batches first", {
        details: { entries: this.#entries.size, maxEntries: this.limits.maxEntries },
      });
    }

    // The draw, binding from here on: the entry is logged before anything else can fail.
    const sampleRatePpm = this.#sampleRatePpm;
    const selected =
      item.force === true || isSelected(this.#secret, digest, sampleRatePpm / 1_000_000);
    const entry: Entry = {
      requestId,
      receipt,
      receiptHash,
      digest,
      leafHash: receiptLeafHash(receipt),
      nodeSignature: item.nodeSignature,
      signer,
      loggedAt: now,
      sampleRatePpm,
      selected,
      verdict: null,
      verdictSignature: null,
      maxDiff: null,
      where: null,
      state: "pending",
      judged: null,
    };
    this.#entries.set(requestId, entry);
    this.#counts.logged++;
    if (!selected) {
      this.#pending.push(entry);
      return this.#answer(entry, false);
    }

    // Re-executed and judged; a repeat arriving meanwhile waits for the verdict, so it answers the same.
    entry.judged = this.#judge(entry, model, tensors, gpuOutputs);
    await entry.judged;
    return this.#answer(entry, false);
  }

  /** Re-executes a selected receipt and judges it within the manifest's tolerance on the node's actual outputs. */
  async #judge(
    entry: Entry,
    model: LoadedModel,
    tensors: InputTensor[],
    gpuOutputs: QuantisedTensor[],
  ): Promise<void> {
    const { receipt, requestId } = entry;
    let cmp: ReturnType<typeof compareOutputs>;
    let enclaveOutputHash: string;
    try {
      const result = await this.#engine.runValidated(model, tensors);
      cmp = compareOutputs(result.outputs, gpuOutputs, tolerancesOf(model.manifest));
      enclaveOutputHash = result.outputHash;
    } catch (error) {
      // The draw stands: the receipt waits in the log for a verdict it can never get, so it is
      // never batched; the failure is the enclave's, said in the answer.
      entry.state = "rejected";
      throw error;
    }
    this.#counts.reexecuted++;
    const verdict: Verdict = {
      receiptHash: entry.receiptHash,
      agree: cmp.agree,
      // Agreeing endorses the node's output (the hash InferenceLedger rebuilds the verdict with);
      // disagreeing names the output the enclave computed, which is the evidence.
      outputHash: cmp.agree ? receipt.outputHash.toLowerCase() : enclaveOutputHash,
      timestamp: entry.loggedAt,
    };
    entry.verdict = verdict;
    entry.verdictSignature = this.#signer.sign(this.#hasher.verdictDigest(verdict));
    entry.maxDiff = cmp.maxDiff.toString();
    entry.where = cmp.where;
    if (cmp.agree) {
      this.#pending.push(entry);
    } else {
      entry.state = "rejected";
      this.#counts.contradicted++;
      this.#addEvidence({
        kind: "contradicted",
        receipt,
        nodeSignature: entry.nodeSignature,
        verdict,
        enclaveSignature: entry.verdictSignature,
      });
      this.#log.warn(
        { at: "Enclave#submit", requestId, maxDiff: entry.maxDiff, where: entry.where },
        "receipt contradicted: evidence published",
      );
    }
  }

  #answer(entry: Entry, duplicate: boolean): LoggedReceipt {
    return {
      requestId: entry.requestId,
      receiptDigest: entry.digest,
      enclave: this.address,
      selected: entry.selected,
      sampleRatePpm: entry.sampleRatePpm,
      verdict: entry.verdict,
      signature: entry.verdictSignature,
      maxDiff: entry.maxDiff,
      where: entry.where,
      duplicate,
    };
  }

  /** A second signed receipt for a logged request that answers the same question differently. */
  #doubleReceipt(existing: Entry, receipt: Receipt, nodeSignature: string): void {
    const a = existing.receipt;
    if (
      a.modelId.toLowerCase() === receipt.modelId.toLowerCase() &&
      a.inputHash.toLowerCase() === receipt.inputHash.toLowerCase() &&
      a.execConfigHash.toLowerCase() === receipt.execConfigHash.toLowerCase() &&
      a.outputHash.toLowerCase() !== receipt.outputHash.toLowerCase()
    ) {
      this.#addEvidence({
        kind: "double-receipt",
        a: { receipt: a, nodeSignature: existing.nodeSignature },
        b: { receipt, nodeSignature },
      });
      this.#log.warn(
        { at: "Enclave#submit", requestId: existing.requestId },
        "two receipts with different outputs for one request: evidence published",
      );
    }
  }

  #addEvidence(record: Omit<EvidenceRecord, "index"> & Record<string, unknown>): void {
    const full = { ...record, index: ++this.#evidenceCount } as EvidenceRecord;
    this.#evidence.push(full);
    if (this.#evidence.length > this.limits.maxEvidence) this.#evidence.shift();
  }

  /** Evidence records with an index above `after`, oldest first, at most `limit`. */
  evidence(after: number, limit = 100): EvidenceRecord[] {
    return this.#evidence.filter((e) => e.index > after).slice(0, limit);
  }

  /** A logged receipt by request id (for a client recovering after a crash), or null. */
  logged(requestId: string): (LoggedReceipt & { receipt: Receipt; nodeSignature: string }) | null {
    const entry = this.#entries.get(requestId.toLowerCase());
    if (entry === undefined) return null;
    return {
      ...this.#answer(entry, true),
      receipt: entry.receipt,
      nodeSignature: entry.nodeSignature,
    };
  }

  /**
   * Cuts the next batch from the log: up to `maxSize` waiting receipts, oldest first, all signed by
   * one key; null when none waits. Receipts signed by a key after NodeStaking recorded its rotation
   * are dropped from the log (they can never be anchored: the chain checks the key at `asOf`).
   */
  async cutBatch(maxSize: number): Promise<SignedBatch | null> {
    if (!Number.isInteger(maxSize) || maxSize < 1 || maxSize > this.limits.maxBatchSize) {
      throw new InputError(`maxSize must be an integer in 1..${this.limits.maxBatchSize}`, {
        details: { maxSize },
      });
    }
    // One cut at a time: two concurrent calls must not take the same receipts.
    const previous = this.#cutting;
    let release!: () => void;
    this.#cutting = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await this.#cut(maxSize);
    } finally {
      release();
    }
  }

  async #cut(maxSize: number): Promise<SignedBatch | null> {
    if (this.#open.size >= this.limits.maxOpenBatches) {
      await this.#readChain(() => this.refresh());
      if (this.#open.size >= this.limits.maxOpenBatches) {
        throw new EnclaveBusyError("too many signed batches are not anchored yet", {
          details: {
            openBatches: this.#open.size,
            maxOpenBatches: this.limits.maxOpenBatches,
            nextSequence: this.#nextSequence,
          },
        });
      }
    }
    // Nothing is taken from the log until the batch is signed: a failure below leaves it as it was.
    const peeked = this.#peekPending(maxSize);
    const head = peeked.head;
    let chosen = peeked.chosen;
    if (chosen.length === 0) return null;
    const signer = chosen[0]!.signer;
    const record = await this.#readChain(() => this.#chain.signerRecordOf(signer));
    if (record.until !== 0n) {
      const late = chosen.filter((e) => e.loggedAt >= record.until);
      for (const e of late) e.state = "rejected";
      if (late.length > 0) {
        this.#log.warn(
          { at: "Enclave#cutBatch", signer, rotatedAt: record.until, dropped: late.length },
          "receipts signed after their key was rotated away dropped from the log",
        );
      }
      chosen = chosen.filter((e) => e.loggedAt < record.until);
      if (chosen.length === 0) {
        this.#pendingHead = head;
        return this.#cut(maxSize);
      }
    }

    const usage = usageSummary(chosen.map((e) => e.receipt));
    const leafHashes = chosen.map((e) => e.leafHash);
    let asOf = 0n;
    let rate = 1_000_000;
    for (const e of chosen) {
      if (e.loggedAt > asOf) asOf = e.loggedAt;
      if (e.sampleRatePpm < rate) rate = e.sampleRatePpm;
    }
    const batch: Batch = {
      enclave: this.address,
      sequence: this.#nextSequence,
      root: buildTreeFromHashes(leafHashes).root,
      count: chosen.length,
      reexecuted: chosen.filter((e) => e.selected).length,
      usageHash: usageHash(usage.modelIds, usage.counts),
      node: this.clientNode,
      signer: getAddress(signer),
      asOf,
      sampleRatePpm: rate,
    };
    const digest = this.#hasher.batchDigest(batch);
    const signed: SignedBatch = {
      batch,
      digest,
      signature: this.#signer.sign(digest),
      requestIds: chosen.map((e) => e.requestId),
      leafHashes,
      modelIds: usage.modelIds,
      counts: usage.counts,
    };
    // Committed: the receipts leave the queue, the sequence is used.
    for (const e of chosen) e.state = "batched";
    this.#pendingHead = head;
    this.#compactPending();
    this.#open.set(batch.sequence, signed);
    this.#nextSequence++;
    this.#counts.batches++;
    return signed;
  }

  /** A chain read for a cut; an unreachable RPC answers 503 (the client tries again), not 500. */
  async #readChain<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (cause) {
      throw new EnclaveBusyError("the enclave cannot read the chain right now", { cause });
    }
  }

  /**
   * Up to `maxSize` waiting entries, oldest first, signed by the same key as the oldest, and the
   * queue position after them; nothing is changed.
   */
  #peekPending(maxSize: number): { chosen: Entry[]; head: number } {
    const chosen: Entry[] = [];
    let signer: string | null = null;
    let i = this.#pendingHead;
    for (; i < this.#pending.length && chosen.length < maxSize; i++) {
      const e = this.#pending[i]!;
      if (e.state !== "pending") continue;
      if (signer !== null && !sameAddress(e.signer, signer)) break;
      signer = e.signer;
      chosen.push(e);
    }
    return { chosen, head: i };
  }

  /** Compacts the queue now and then (everything before the head has left the pending state). */
  #compactPending(): void {
    if (this.#pendingHead > 4096 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
  }

  /** Signed batches not yet anchored, from `sequence` on (a client re-reading after a crash). */
  openBatches(fromSequence = 0n): SignedBatch[] {
    return [...this.#open.values()]
      .filter((b) => b.batch.sequence >= fromSequence)
      .sort((x, y) => (x.batch.sequence < y.batch.sequence ? -1 : 1));
  }

  /**
   * Drops entries that left the pending state once their receipt is older than the window (it
   * would be refused as stale if sent again). A receipt may be dated up to the window ahead of when
   * it was logged, so both times must be behind the horizon.
   */
  #prune(): void {
    const horizon = this.#clock.now() - BigInt(this.limits.receiptWindowSeconds) - 1n;
    for (const [id, e] of this.#entries) {
      if (e.loggedAt >= horizon) break;
      if (e.state !== "pending" && e.receipt.timestamp < horizon) this.#entries.delete(id);
    }
  }
}

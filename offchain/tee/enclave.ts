/**
 * The enclave's job: re-execute a receipt's inference on CPU, compare with the GPU node's
 * canonical output within the model's tolerance, and sign a Verdict; sign batch roots, never two
 * different batches for one sequence number. The signing key (an Ethereum secp256k1 key, whose
 * address is the enclave key registered on chain) is created inside and never leaves: the only
 * things that come out are its address, its public key and signatures.
 *
 * Attestation binding: public_key = the uncompressed secp256k1 public key (65 bytes) and
 * user_data = address (20) || chainId (32, big-endian) || ledger (20), so a verifier learns which
 * Ethereum key the attested image holds and for which deployment.
 */
import { randomBytes } from "node:crypto";

import {
  Wallet,
  getAddress,
  getBytes,
  toBeHex,
  zeroPadValue,
  concat,
  computeAddress,
  hexlify,
} from "ethers";

import { BaseError, InputError, VerificationError } from "../common/errors.js";
import { DigestSigner } from "../chain/ecdsa.js";
import {
  batchDigest,
  ledgerDomain,
  type Batch,
  type LedgerDomain,
  type Receipt,
  type Verdict,
} from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import type { InferenceEngine } from "../inference/engine.js";
import {
  compareOutputs,
  inputHash,
  outputHash,
  outputsFromJson,
  validateInputs,
  type TensorJson,
} from "../inference/tensor.js";
import type { AttestationRequest } from "./devAttestation.js";
import { isSelected, sampleThreshold } from "./sampling.js";
import { parseWith, verifyRequestSchema, type BatchRequest } from "./schemas.js";

/** Issues attestation documents (DevAttestor here; the Nitro NSM device inside a real enclave). */
export interface Attestor {
  attest(request: AttestationRequest): Buffer;
}

export class InputMismatchError extends VerificationError {
  override name = "InputMismatchError";
}

export class BatchConflictError extends BaseError {
  override name = "BatchConflictError";
  override readonly httpStatus: number = 409;
}

export interface EnclaveOptions {
  engine: InferenceEngine;
  attestor: Attestor;
  chainId: bigint;
  ledger: string;
}

export interface SignedVerdict {
  selected: true;
  verdict: Verdict;
  digest: string;
  signature: string;
  enclave: string;
  /** Largest per-element difference from the GPU output (quantised units); null when only hashes were compared. */
  maxDiff: string | null;
  where: string | null;
}

/** One answer of `verifyMany`: the verdict, or the error that request alone would have answered. */
export type VerifyOutcome =
  | { ok: true; result: SignedVerdict | NotSelected }
  | {
      ok: false;
      status: number;
      error: string;
      message: string;
      details: Record<string, unknown>;
    };

export interface NotSelected {
  selected: false;
  receiptDigest: string;
}

export interface SignedBatch {
  batch: Batch;
  digest: string;
  signature: string;
}

/** user_data layout: address (20) || chainId (32, big-endian) || ledger (20). */
export function bindingUserData(address: string, chainId: bigint, ledger: string): Uint8Array {
  return getBytes(
    concat([getAddress(address), zeroPadValue(toBeHex(chainId), 32), getAddress(ledger)]),
  );
}

/** Reads an attestation's binding back: the address in user_data must be the public_key's address. */
export function readBinding(
  publicKey: Uint8Array | null,
  userData: Uint8Array | null,
): { address: string; chainId: bigint; ledger: string } {
  if (
    publicKey === null ||
    publicKey.length !== 65 ||
    userData === null ||
    userData.length !== 72
  ) {
    throw new VerificationError(
      "attestation does not bind an enclave key (public_key 65 bytes, user_data 72 bytes expected)",
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
  };
}

export class Enclave {
  readonly domain: LedgerDomain;
  readonly #wallet: Wallet;
  readonly #signer: DigestSigner;
  readonly #hasher: LedgerHasher;
  readonly #secret: Uint8Array;
  readonly #signedBatches = new Map<bigint, SignedBatch>();
  readonly #engine: InferenceEngine;
  readonly #attestor: Attestor;

  constructor(options: EnclaveOptions) {
    if (options.engine.provider !== "cpu") {
      throw new InputError("the enclave re-executes on cpu; give it an engine with provider cpu", {
        details: { provider: options.engine.provider },
      });
    }
    this.#engine = options.engine;
    this.#attestor = options.attestor;
    this.domain = ledgerDomain(options.chainId, getAddress(options.ledger));
    this.#wallet = new Wallet(hexlify(randomBytes(32)));
    this.#signer = new DigestSigner(this.#wallet.signingKey);
    this.#hasher = new LedgerHasher(this.domain);
    this.#secret = randomBytes(32);
  }

  get address(): string {
    return this.#wallet.address;
  }

  /** Uncompressed secp256k1 public key (0x04 || x || y). */
  get publicKey(): Uint8Array {
    return getBytes(this.#wallet.signingKey.publicKey);
  }

  get userData(): Uint8Array {
    return bindingUserData(this.address, this.domain.chainId, this.domain.verifyingContract);
  }

  get models(): Array<{ modelId: string; name: string; tolerance: number; outputScale: number }> {
    return this.#engine.list().map((m) => ({
      modelId: m.modelId,
      name: m.manifest.name,
      tolerance: m.manifest.tolerance,
      outputScale: m.manifest.outputScale,
    }));
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

  /** Whether this enclave re-executes the receipt at `rate` (see sampling.ts). */
  isSelected(receipt: Receipt, rate: number): boolean {
    return isSelected(this.#secret, this.#hasher.receiptDigest(receipt), rate);
  }

  /**
   * Re-executes the receipt's inference and signs a verdict. The inputs must hash to
   * receipt.inputHash (else InputMismatchError: the enclave cannot judge other inputs); GPU
   * outputs, when given, must hash to receipt.outputHash and are compared within tolerance;
   * without them the verdict compares output hashes exactly.
   */
  async verify(request: {
    receipt: Receipt;
    inputs: Record<string, TensorJson>;
    outputs?: unknown[] | undefined;
    sampleRate?: number | undefined;
  }): Promise<SignedVerdict | NotSelected> {
    const { receipt } = request;
    if (request.sampleRate !== undefined) {
      sampleThreshold(request.sampleRate);
      const digest = this.#hasher.receiptDigest(receipt);
      if (!isSelected(this.#secret, digest, request.sampleRate))
        return { selected: false, receiptDigest: digest };
    }
    const model = this.#engine.get(receipt.modelId);
    const tensors = validateInputs(model.manifest, request.inputs);
    const computedInputHash = inputHash(tensors);
    if (computedInputHash !== receipt.inputHash.toLowerCase()) {
      throw new InputMismatchError("inputs do not hash to the receipt's inputHash", {
        details: { receiptInputHash: receipt.inputHash, computedInputHash },
      });
    }
    const gpuOutputs =
      request.outputs === undefined ? undefined : outputsFromJson(model.manifest, request.outputs);
    if (gpuOutputs !== undefined && outputHash(gpuOutputs) !== receipt.outputHash.toLowerCase()) {
      throw new InputMismatchError("outputs do not hash to the receipt's outputHash", {
        details: {
          receiptOutputHash: receipt.outputHash,
          computedOutputHash: outputHash(gpuOutputs),
        },
      });
    }
    const result = await this.#engine.runValidated(model, tensors);
    let agree: boolean;
    let maxDiff: string | null = null;
    let where: string | null = null;
    if (gpuOutputs !== undefined) {
      const cmp = compareOutputs(result.outputs, gpuOutputs, model.manifest.tolerance);
      agree = cmp.agree;
      maxDiff = cmp.maxDiff.toString();
      where = cmp.where;
    } else {
      agree = result.outputHash === receipt.outputHash.toLowerCase();
    }
    // Agreeing endorses the GPU node's output (the hash InferenceLedger rebuilds the verdict with);
    // disagreeing names the output the enclave computed, which is the evidence.
    const verdict: Verdict = {
      receiptHash: this.#hasher.receiptStructHash(receipt),
      agree,
      outputHash: agree ? receipt.outputHash.toLowerCase() : result.outputHash,
    };
    const digest = this.#hasher.verdictDigest(verdict);
    return {
      selected: true,
      verdict,
      digest,
      signature: this.#signer.sign(digest),
      enclave: this.address,
      maxDiff,
      where,
    };
  }

  /**
   * `verify` for many receipts at once (one HTTP round trip from the relayer for all the receipts it
   * holds at that moment). Each request is judged on its own: a bad one answers its own error and
   * does not affect the others.
   */
  async verifyMany(requests: unknown[]): Promise<VerifyOutcome[]> {
    return Promise.all(
      requests.map(async (raw, index): Promise<VerifyOutcome> => {
        try {
          const request = parseWith(verifyRequestSchema, raw, `verify request ${index}`);
          return { ok: true, result: await this.verify(request) };
        } catch (error) {
          if (!(error instanceof BaseError)) throw error;
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

  /** Signs a batch; the same batch again returns the same signature, a different one is refused. */
  signBatch(request: BatchRequest): SignedBatch {
    const batch: Batch = { enclave: this.address, ...request };
    const digest = batchDigest(this.domain, batch);
    const prior = this.#signedBatches.get(batch.sequence);
    if (prior !== undefined) {
      if (prior.digest === digest) return prior;
      throw new BatchConflictError(
        `already signed a different batch for sequence ${batch.sequence}`,
        {
          details: {
            sequence: batch.sequence,
            signedRoot: prior.batch.root,
            requestedRoot: batch.root,
            signedDigest: prior.digest,
            requestedDigest: digest,
          },
        },
      );
    }
    if (batch.reexecuted > batch.count) {
      throw new InputError(`reexecuted (${batch.reexecuted}) exceeds count (${batch.count})`, {
        details: { count: batch.count, reexecuted: batch.reexecuted },
      });
    }
    const signed: SignedBatch = {
      batch,
      digest,
      signature: this.#signer.sign(digest),
    };
    this.#signedBatches.set(batch.sequence, signed);
    return signed;
  }
}

/**
 * A client for the enclave's HTTP API (what the relayer uses). Responses are checked: a verdict
 * or batch signature must recover to the enclave address the caller trusts (from its verified
 * attestation), so a man in the middle cannot substitute its own.
 */
import { getAddress, recoverAddress } from "ethers";

import { BaseError, VerificationError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import { recoverSigner } from "../chain/ecdsa.js";
import { batchDigest, type LedgerDomain, type Receipt } from "../chain/eip712.js";
import { LedgerHasher } from "../chain/hasher.js";
import type { QuantisedTensorJson, TensorJson } from "../inference/tensor.js";
import type { NotSelected, SignedBatch, SignedVerdict } from "./enclave.js";
import type { BatchRequest } from "./schemas.js";

/**
 * The enclave's answer to a verify request, checked: a verdict's digest is recomputed and its
 * signature must recover to `expected`, the enclave the caller verified. (EnclaveClient#verify and
 * the relayer's KeepAliveEnclaveVerifier both check with this.)
 */
export function checkVerdict(
  hasher: LedgerHasher,
  expected: string,
  answer: SignedVerdict | NotSelected,
): SignedVerdict | NotSelected {
  if (!answer.selected) return answer;
  const digest = hasher.verdictDigest(answer.verdict);
  if (digest !== answer.digest || recoverSigner(digest, answer.signature) !== expected) {
    throw new VerificationError("verdict is not signed by the expected enclave", {
      details: { expected, digest },
    });
  }
  return answer;
}

export class EnclaveRequestError extends BaseError {
  override name = "EnclaveRequestError";
}

export interface AttestationResponse {
  document: Buffer;
  enclave: string;
  publicKey: string;
  userData: string;
}

export class EnclaveClient {
  private readonly hasher: LedgerHasher;

  constructor(
    readonly url: string,
    /** The enclave address the caller has verified (attestation + registry). */
    readonly enclave: string,
    readonly domain: LedgerDomain,
  ) {
    this.hasher = new LedgerHasher(domain);
  }

  private async call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        ...(body === undefined
          ? {}
          : { body: stringifyJson(body, 0), headers: { "content-type": "application/json" } }),
      });
    } catch (cause) {
      throw new EnclaveRequestError(`enclave at ${this.url} is unreachable`, {
        details: { path },
        cause,
      });
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) {
      throw new EnclaveRequestError(
        `enclave answered ${res.status} to ${method} ${path}: ${typeof json.message === "string" ? json.message : ""}`,
        {
          details: { status: res.status, error: json.error, enclaveDetails: json.details },
        },
      );
    }
    return json;
  }

  async attestation(nonce: Uint8Array): Promise<AttestationResponse> {
    const json = await this.call("GET", `/attestation?nonce=${Buffer.from(nonce).toString("hex")}`);
    return {
      document: Buffer.from(String(json.document), "base64"),
      enclave: String(json.enclave),
      publicKey: String(json.publicKey),
      userData: String(json.userData),
    };
  }

  async verify(request: {
    receipt: Receipt;
    inputs: Record<string, TensorJson>;
    outputs?: QuantisedTensorJson[];
    sampleRate?: number;
  }): Promise<SignedVerdict | NotSelected> {
    const json = (await this.call("POST", "/verify", request)) as unknown as
      SignedVerdict | NotSelected;
    return checkVerdict(this.hasher, getAddress(this.enclave), json);
  }

  async signBatch(batch: BatchRequest): Promise<SignedBatch> {
    const json = (await this.call("POST", "/sign-batch", batch)) as unknown as {
      batch: Record<string, unknown>;
      digest: string;
      signature: string;
    };
    const signed: SignedBatch = {
      batch: { ...batch, enclave: getAddress(String(json.batch.enclave)) },
      digest: json.digest,
      signature: json.signature,
    };
    const digest = batchDigest(this.domain, { ...batch, enclave: getAddress(this.enclave) });
    if (
      digest !== signed.digest ||
      recoverAddress(digest, signed.signature) !== getAddress(this.enclave)
    ) {
      throw new VerificationError("batch is not signed by the expected enclave", {
        details: { expected: this.enclave, digest },
      });
    }
    return signed;
  }
}

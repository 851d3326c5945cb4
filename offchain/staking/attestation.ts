/**
 * The quorum verifier's typed data (contracts/tee/QuorumAttestationVerifier.sol): attesters sign that
 * they verified a Nitro attestation document off chain; the node submits the signatures, sorted by
 * signer, in `abi.encode(bytes32 documentHash, uint64 issuedAt, bytes[] signatures)`.
 */
import type { Signer, TypedDataDomain } from "ethers";
import { AbiCoder, TypedDataEncoder, getAddress, verifyTypedData } from "ethers";

import { InputError } from "../common/errors.js";

export const QUORUM_DOMAIN_NAME = "OPG TEE Attestation Quorum";
export const QUORUM_DOMAIN_VERSION = "1";

export const ATTESTATION_TYPES = {
  Attestation: [
    { name: "node", type: "address" },
    { name: "enclaveKey", type: "address" },
    { name: "measurement", type: "bytes32" },
    { name: "documentHash", type: "bytes32" },
    { name: "issuedAt", type: "uint64" },
  ],
};

/** What the attesters vouch for. */
export interface AttestationStatement {
  node: string;
  enclaveKey: string;
  measurement: string;
  /** keccak-256 of the Nitro attestation document bytes. */
  documentHash: string;
  /** Unix seconds when the attester checked the document. */
  issuedAt: bigint;
}

export function quorumDomain(chainId: bigint, verifier: string): TypedDataDomain {
  return {
    name: QUORUM_DOMAIN_NAME,
    version: QUORUM_DOMAIN_VERSION,
    chainId,
    verifyingContract: verifier,
  };
}

export function attestationDigest(
  domain: TypedDataDomain,
  statement: AttestationStatement,
): string {
  return TypedDataEncoder.hash(domain, ATTESTATION_TYPES, statement);
}

/** One attester's signature over the statement. */
export async function signAttestation(
  attester: Signer,
  domain: TypedDataDomain,
  statement: AttestationStatement,
): Promise<string> {
  return attester.signTypedData(domain, ATTESTATION_TYPES, statement);
}

/**
 * The `attestation` bytes for TeeRegistry.registerEnclave with the quorum verifier: signatures are
 * sorted by their signer's address (the contract requires strictly increasing signers).
 */
export function encodeQuorumAttestation(
  domain: TypedDataDomain,
  statement: AttestationStatement,
  signatures: readonly string[],
): string {
  const bySigner = new Map<string, string>();
  for (const signature of signatures) {
    const signer = getAddress(verifyTypedData(domain, ATTESTATION_TYPES, statement, signature));
    if (bySigner.has(signer)) {
      throw new InputError("two signatures come from the same attester", {
        details: { attester: signer },
      });
    }
    bySigner.set(signer, signature);
  }
  const sorted = [...bySigner.entries()]
    .sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1))
    .map(([, signature]) => signature);
  return AbiCoder.defaultAbiCoder().encode(
    ["bytes32", "uint64", "bytes[]"],
    [statement.documentHash, statement.issuedAt, sorted],
  );
}

/**
 * An attester of the quorum verifier (contracts/tee/QuorumAttestationVerifier.sol) checks a Nitro
 * attestation document itself, then signs the EIP-712 statement that it did. Its signature vouches only for
 * what it checked here:
 *
 *   root        the document's certificate chain ends in the trusted root (AWS's Nitro root unless told),
 *               every certificate valid now, the COSE ES384 signature by the leaf (offchain/tee/attestation.ts)
 *   pcrs        PCR0..2 are an image approved on chain (TeeRegistry.isMeasurementApproved) and/or in the
 *               PCR policy given; a debug-mode document (PCRs zero) is refused
 *   age         the document is at most `maxAgeMs` old now and not from the future
 *   key_binding public_key is the enclave key (its address is the one to register) and user_data binds the
 *               same address, this chain id and (when known) this InferenceLedger
 *
 * Every attester signs the same statement: node, enclaveKey, measurement = keccak256(PCR0‖PCR1‖PCR2),
 * documentHash = keccak256(document) and issuedAt = the document's own timestamp in seconds (so M attesters
 * checking at different moments sign one digest, and the chain's max age runs from the enclave's attestation,
 * not from the last signature).
 */
import type { Signer, TypedDataDomain } from "ethers";
import { getAddress, keccak256, verifyTypedData } from "ethers";

import type { BaseErrorOptions } from "../common/errors.js";
import { InputError, VerificationError } from "../common/errors.js";
import {
  ATTESTATION_TYPES,
  quorumDomain,
  signAttestation,
  type AttestationStatement,
} from "../staking/attestation.js";
import { measurementFromPcrs } from "../staking/units.js";

import { AttestationError, verifyAttestation, type PcrPolicy } from "./attestation.js";
import { readBinding } from "./enclave.js";

/** The checks an attester refuses on, in the order it makes them. */
export type AttesterCheck =
  "root" | "chain" | "signature" | "encoding" | "pcrs" | "key_binding" | "age";

/** The attester will not sign: `check` names what failed. */
export class AttesterRefusal extends VerificationError {
  override name = "AttesterRefusal";
  constructor(
    readonly check: AttesterCheck,
    message: string,
    options: BaseErrorOptions = {},
  ) {
    super(`refused to attest (${check}): ${message}`, {
      ...options,
      details: { check, ...options.details },
    });
  }
}

export interface AttesterCheckInput {
  document: Uint8Array;
  /** Trusted roots (PEM or DER); AWS's Nitro root in production. */
  roots: Array<string | Uint8Array>;
  /** The VERIFIER node the enclave registers under. */
  node: string;
  /** The chain and the quorum verifier (the EIP-712 domain). */
  chainId: bigint;
  verifier: string;
  /** InferenceLedger: user_data must bind it when given. */
  ledger?: string;
  /** The enclave key the registration names; when given, the document must bind this one. */
  enclaveKey?: string;
  /** Approved PCR sets given by hand; the document must match one of them. */
  approvedPcrs?: PcrPolicy;
  /** Whether TeeRegistry approves a measurement (read on chain). */
  isApproved?: (measurement: string) => Promise<boolean>;
  /** Largest accepted age of the document now. */
  maxAgeMs: number;
  /** The attester's clock (tests pin it). */
  at?: Date;
}

export interface AttesterCheckResult {
  statement: AttestationStatement;
  domain: TypedDataDomain;
  /** The GPU node the enclave serves (user_data), for the attester's log. */
  clientNode: string;
  moduleId: string;
  ageMs: number;
}

const ROOT_CHECKS = new Set([
  "root",
  "chain",
  "validity",
  "signature",
  "cose",
  "payload",
  "encoding",
]);

/** Every check of the file's comment; the statement to sign when all pass, an AttesterRefusal otherwise. */
export async function checkForAttestation(input: AttesterCheckInput): Promise<AttesterCheckResult> {
  if (input.approvedPcrs === undefined && input.isApproved === undefined)
    throw new InputError("the attester needs the approved images: the chain (--rpc) or --pcrs", {
      hint: "pass --rpc and --deployment to read TeeRegistry, or --pcrs with the approved PCR policy",
    });
  const at = input.at ?? new Date();

  // Root and signature (and the leaf's validity now); freshness is checked below with its own name.
  let verified: ReturnType<typeof verifyAttestation>;
  try {
    verified = verifyAttestation(input.document, {
      roots: input.roots,
      at,
      maxAgeMs: Number.MAX_SAFE_INTEGER,
      maxSkewMs: Number.MAX_SAFE_INTEGER,
      ...(input.approvedPcrs === undefined ? {} : { approvedPcrs: input.approvedPcrs }),
    });
  } catch (error) {
    if (!(error instanceof AttestationError)) throw error;
    const check: AttesterCheck = ROOT_CHECKS.has(error.check)
      ? error.check === "root" || error.check === "signature"
        ? error.check
        : "chain"
      : error.check === "pcrs" || error.check === "debug"
        ? "pcrs"
        : "encoding";
    throw new AttesterRefusal(check, error.message, { details: error.details, cause: error });
  }
  const doc = verified.document;

  // The image: approved on chain (and in the policy given, checked above).
  const pcrs = [0, 1, 2].map((i) =>
    Buffer.from(doc.pcrs.get(i) ?? new Uint8Array(0)).toString("hex"),
  );
  const measurement = measurementFromPcrs(pcrs);
  if (input.isApproved !== undefined && !(await input.isApproved(measurement)))
    throw new AttesterRefusal("pcrs", `measurement ${measurement} is not approved in TeeRegistry`, {
      details: { measurement, pcr0: pcrs[0], pcr1: pcrs[1], pcr2: pcrs[2] },
      hint: "governance approves an image with opg:gov:propose approve-measurement",
    });

  // Freshness at the attester's own clock.
  const ageMs = at.getTime() - doc.timestamp;
  if (ageMs > input.maxAgeMs || ageMs < -60_000)
    throw new AttesterRefusal(
      "age",
      ageMs > input.maxAgeMs
        ? `document is ${Math.round(ageMs / 1000)} s old (max ${Math.round(input.maxAgeMs / 1000)} s)`
        : `document timestamp is ${Math.round(-ageMs / 1000)} s in the future`,
      {
        details: {
          timestamp: new Date(doc.timestamp).toISOString(),
          at: at.toISOString(),
          maxAgeMs: input.maxAgeMs,
        },
      },
    );

  // The key binding: public_key is the enclave key, user_data binds it to this chain (and ledger).
  let binding: ReturnType<typeof readBinding>;
  try {
    binding = readBinding(doc.publicKey, doc.userData);
  } catch (error) {
    throw new AttesterRefusal("key_binding", (error as Error).message, {
      details: (error as VerificationError).details,
      cause: error,
    });
  }
  if (input.enclaveKey !== undefined && getAddress(input.enclaveKey) !== binding.address)
    throw new AttesterRefusal("key_binding", "the document binds another enclave key", {
      details: { expected: getAddress(input.enclaveKey), attested: binding.address },
    });
  if (binding.chainId !== input.chainId)
    throw new AttesterRefusal(
      "key_binding",
      `user_data binds chain ${binding.chainId}, not ${input.chainId}`,
      {
        details: { attested: binding.chainId, chainId: input.chainId },
      },
    );
  if (input.ledger !== undefined && getAddress(input.ledger) !== binding.ledger)
    throw new AttesterRefusal("key_binding", "user_data binds another InferenceLedger", {
      details: { expected: getAddress(input.ledger), attested: binding.ledger },
    });

  const statement: AttestationStatement = {
    node: getAddress(input.node),
    enclaveKey: binding.address,
    measurement,
    documentHash: keccak256(input.document),
    issuedAt: BigInt(Math.floor(doc.timestamp / 1000)),
  };
  return {
    statement,
    domain: quorumDomain(input.chainId, getAddress(input.verifier)),
    clientNode: binding.clientNode,
    moduleId: doc.moduleId,
    ageMs,
  };
}

/** What `opg attester sign` writes and `opg:tee:register --attester-signatures` reads. */
export interface AttesterSignatureFile {
  version: 1;
  attester: string;
  chainId: string;
  verifier: string;
  statement: {
    node: string;
    enclaveKey: string;
    measurement: string;
    documentHash: string;
    issuedAt: string;
  };
  signature: string;
}

export async function signChecked(
  attester: Signer,
  checked: AttesterCheckResult,
): Promise<AttesterSignatureFile> {
  const signature = await signAttestation(attester, checked.domain, checked.statement);
  const s = checked.statement;
  return {
    version: 1,
    attester: getAddress(await attester.getAddress()),
    chainId: String(checked.domain.chainId),
    verifier: String(checked.domain.verifyingContract),
    statement: { ...s, issuedAt: s.issuedAt.toString() },
    signature,
  };
}

/**
 * Signature files of one registration: each must verify under its own statement and name the signer it
 * claims, and all must be over the same statement and domain. Returns the statement, domain and signatures.
 */
export function collectAttesterSignatures(files: Array<{ name: string; json: unknown }>): {
  statement: AttestationStatement;
  domain: TypedDataDomain;
  signatures: string[];
  attesters: string[];
} {
  if (files.length === 0) throw new InputError("no attester signature files given");
  let first: { key: string; statement: AttestationStatement; domain: TypedDataDomain } | undefined;
  const signatures: string[] = [];
  const attesters: string[] = [];
  for (const { name, json } of files) {
    const f = json as Partial<AttesterSignatureFile>;
    if (f.version !== 1 || f.statement === undefined || typeof f.signature !== "string")
      throw new InputError(`${name} is not an attester signature file (opg attester sign)`, {
        details: { file: name },
      });
    const statement: AttestationStatement = {
      ...f.statement,
      issuedAt: BigInt(f.statement.issuedAt),
    };
    const domain = quorumDomain(BigInt(f.chainId ?? "0"), getAddress(f.verifier ?? ""));
    const key = JSON.stringify([f.chainId, getAddress(f.verifier ?? ""), f.statement]);
    if (first === undefined) first = { key, statement, domain };
    else if (first.key !== key)
      throw new InputError(`${name} signs another statement than ${files[0]!.name}`, {
        details: { file: name, statement: f.statement, first: first.statement.documentHash },
        hint: "every attester must sign the same document for the same node, enclave and verifier",
      });
    const signer = getAddress(verifyTypedData(domain, ATTESTATION_TYPES, statement, f.signature));
    if (f.attester !== undefined && getAddress(f.attester) !== signer)
      throw new InputError(`${name}: the signature is not by ${f.attester}`, {
        details: { file: name, claimed: f.attester, recovered: signer },
      });
    signatures.push(f.signature);
    attesters.push(signer);
  }
  return { statement: first!.statement, domain: first!.domain, signatures, attesters };
}

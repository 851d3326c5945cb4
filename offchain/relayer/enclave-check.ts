/**
 * The relayer's start-up check of its enclave, in place of trusting what the enclave says about
 * itself:
 *
 *   1. attestation: GET /attestation with a fresh random nonce; the Nitro document must chain to
 *      the trusted root (AWS's for real enclaves, a development root's PEM for the dev enclave),
 *      carry a valid ES384 signature, be fresh (`maxAgeMs`) and answer that nonce;
 *   2. binding: the attested key (public_key/user_data, readBinding) is bound to this relayer's
 *      chain id and ledger, and serves this relayer's GPU node;
 *   3. registry: the ledger's TeeRegistry (TEE_REGISTRY; `chain.teeRegistry` when configured must
 *      be the same) has that key registered, with the image measurement (keccak256 of PCR0..2) the
 *      document attests to, that image still approved, and the enclave active (registration not
 *      expired, its VERIFIER node active in NodeStaking).
 *
 * Every failure is an EnclaveCheckError whose `step` names the check and whose message names the
 * enclave and the registry.
 */
import { X509Certificate, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

import { Contract, ZeroAddress, getAddress, isError, type Provider } from "ethers";
import type { Logger } from "pino";

import { loadAbi } from "../chain/artifacts.js";
import { InputError, VerificationError, type BaseErrorOptions } from "../common/errors.js";
import { measurementFromPcrs } from "../staking/units.js";
import { AttestationError, verifyAttestation } from "../tee/attestation.js";
import { AWS_NITRO_ROOT_G1_PEM } from "../tee/awsRoot.js";
import { readBinding } from "../tee/enclave.js";
import { AWS_NITRO_ROOT, type RelayerConfig } from "./config.js";

export type EnclaveCheckStep =
  "unreachable" | "attestation" | "binding" | "registry" | "measurement" | "inactive";

export class EnclaveCheckError extends VerificationError {
  override name = "EnclaveCheckError";
  constructor(
    readonly step: EnclaveCheckStep,
    message: string,
    options: BaseErrorOptions = {},
  ) {
    super(message, { ...options, details: { step, ...options.details } });
  }
}

export interface EnclaveCheckOptions {
  /** The enclave's HTTP API. */
  url: string;
  /** The relayer's chain and ledger: the attested key must be bound to both. */
  chainId: bigint;
  ledger: string;
  /** The relayer's GPU node: the enclave must serve it. */
  node: string;
  /** The TeeRegistry the operator expects; the ledger's must be this one. */
  teeRegistry?: string | undefined;
  /** "aws-nitro" or the path of a PEM root certificate. */
  root: string;
  /** Largest accepted document age. */
  maxAgeMs: number;
  /** Accept a debug-mode enclave (PCRs all zero); default false. */
  allowDebug?: boolean;
  provider: Provider;
  log?: Logger;
  /** The verification time (default: now). */
  now?: () => Date;
  /** How long the enclave may take to answer. */
  timeoutMs?: number;
}

export interface CheckedEnclave {
  /** The enclave key's address (what signs verdicts and batches). */
  address: string;
  /** The VERIFIER node it is registered under. */
  node: string;
  teeRegistry: string;
  /** keccak256(PCR0 ‖ PCR1 ‖ PCR2) of the attested image. */
  measurement: string;
  /** When the registration expires (unix seconds); null if the registry does not say. */
  expiresAt: number | null;
  moduleId: string;
  ageMs: number;
}

/** The check's options from the relayer's config. */
export function enclaveCheckOptions(
  config: RelayerConfig,
): Omit<EnclaveCheckOptions, "provider" | "log"> {
  return {
    url: config.enclave.url,
    chainId: BigInt(config.chain.chainId),
    ledger: getAddress(config.chain.ledger),
    node: getAddress(config.node.address),
    teeRegistry: config.chain.teeRegistry,
    root: config.enclave.attestation.root,
    maxAgeMs: config.enclave.attestation.maxAgeSeconds * 1000,
    allowDebug: config.enclave.attestation.allowDebug,
  };
}

/** The root certificate (PEM) that `root` names: "aws-nitro" or a PEM file. */
export function trustedRoot(root: string): string {
  if (root === AWS_NITRO_ROOT) return AWS_NITRO_ROOT_G1_PEM;
  let pem: string;
  try {
    pem = readFileSync(root, "utf8");
  } catch (cause) {
    throw new InputError(`cannot read the enclave attestation root ${root}`, {
      details: { path: root },
      hint: `enclave.attestation.root is "${AWS_NITRO_ROOT}" or a PEM file (a dev enclave's GET /info -> devRootPem)`,
      cause,
    });
  }
  try {
    new X509Certificate(pem);
  } catch (cause) {
    throw new InputError(`the enclave attestation root ${root} is not a PEM certificate`, {
      details: { path: root },
      cause,
    });
  }
  return pem;
}

async function fetchAttestation(
  url: string,
  nonce: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  const path = `/attestation?nonce=${Buffer.from(nonce).toString("hex")}`;
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (cause) {
    throw new EnclaveCheckError("unreachable", `enclave at ${url} is unreachable`, {
      details: { url },
      cause,
    });
  }
  const body = (await res.json().catch(() => null)) as {
    document?: unknown;
    message?: unknown;
  } | null;
  if (!res.ok || typeof body?.document !== "string") {
    throw new EnclaveCheckError(
      "unreachable",
      `enclave at ${url} gave no attestation document (HTTP ${res.status})`,
      { details: { url, status: res.status, message: body?.message } },
    );
  }
  return Buffer.from(body.document, "base64");
}

/** A contract call that reverts without data: the function is not there (another registry). */
function isMissingFunction(error: unknown): boolean {
  return isError(error, "CALL_EXCEPTION") && (error.data === null || error.data === "0x");
}

/** Checks the enclave at `options.url` (see the file's comment); resolves with what was checked. */
export async function checkEnclave(options: EnclaveCheckOptions): Promise<CheckedEnclave> {
  const { url, provider } = options;
  const ledger = getAddress(options.ledger);
  const roots = [trustedRoot(options.root)];

  // 1. A fresh attestation document, verified against the trusted root and our nonce.
  const nonce = randomBytes(32);
  const document = await fetchAttestation(url, nonce, options.timeoutMs ?? 10_000);
  let verified: ReturnType<typeof verifyAttestation>;
  try {
    verified = verifyAttestation(document, {
      roots,
      nonce,
      maxAgeMs: options.maxAgeMs,
      allowDebug: options.allowDebug === true,
      at: options.now?.() ?? new Date(),
    });
  } catch (cause) {
    if (!(cause instanceof AttestationError)) throw cause;
    throw new EnclaveCheckError(
      "attestation",
      `the enclave at ${url} failed attestation: ${cause.message}`,
      { details: { url, ...cause.details }, cause },
    );
  }
  const doc = verified.document;

  // 2. The attested key, bound to this chain and ledger.
  let binding: ReturnType<typeof readBinding>;
  try {
    binding = readBinding(doc.publicKey, doc.userData);
  } catch (cause) {
    if (!(cause instanceof VerificationError)) throw cause;
    throw new EnclaveCheckError("binding", `the enclave at ${url}: ${cause.message}`, {
      details: { url, ...cause.details },
      cause,
    });
  }
  const address = binding.address;
  if (binding.chainId !== options.chainId || binding.ledger !== ledger) {
    throw new EnclaveCheckError(
      "binding",
      `enclave ${address} is bound to chain ${binding.chainId} and ledger ${binding.ledger}, not to this relayer's chain ${options.chainId} and ledger ${ledger}`,
      {
        details: {
          enclave: address,
          enclaveChainId: binding.chainId,
          enclaveLedger: binding.ledger,
          chainId: options.chainId,
          ledger,
        },
      },
    );
  }

  if (binding.clientNode !== getAddress(options.node)) {
    throw new EnclaveCheckError(
      "binding",
      `enclave ${address} serves node ${binding.clientNode}, not this relayer's node ${getAddress(options.node)}`,
      { details: { enclave: address, enclaveNode: binding.clientNode, node: options.node } },
    );
  }

  let measurement: string;
  try {
    measurement = measurementFromPcrs(
      [0, 1, 2].map((i) => Buffer.from(doc.pcrs.get(i) ?? new Uint8Array(0)).toString("hex")),
    );
  } catch (cause) {
    throw new EnclaveCheckError(
      "measurement",
      `enclave ${address} attests no Nitro image measurement (PCR0..2 of 48 bytes)`,
      { details: { enclave: address }, cause },
    );
  }

  // 3. The ledger's TeeRegistry: registered, with this image, approved, active.
  const ledgerContract = new Contract(
    ledger,
    loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger"),
    provider,
  );
  let teeRegistry: string;
  try {
    teeRegistry = getAddress(String(await ledgerContract.getFunction("TEE_REGISTRY")()));
  } catch (cause) {
    if (!isError(cause, "CALL_EXCEPTION") && !isError(cause, "BAD_DATA")) throw cause;
    throw new EnclaveCheckError(
      "registry",
      `cannot read the TeeRegistry of ledger ${ledger} (is it an InferenceLedger?)`,
      { details: { ledger }, cause },
    );
  }
  if (options.teeRegistry !== undefined && getAddress(options.teeRegistry) !== teeRegistry) {
    throw new EnclaveCheckError(
      "registry",
      `ledger ${ledger} uses TeeRegistry ${teeRegistry}, not the configured ${getAddress(options.teeRegistry)}`,
      { details: { ledger, ledgerTeeRegistry: teeRegistry, configured: options.teeRegistry } },
    );
  }
  const registry = new Contract(
    teeRegistry,
    loadAbi("contracts/tee/TeeRegistry.sol", "TeeRegistry"),
    provider,
  );
  const notRegistered = (): EnclaveCheckError =>
    new EnclaveCheckError(
      "registry",
      `enclave ${address} is not registered in TeeRegistry ${teeRegistry}`,
      {
        details: { enclave: address, teeRegistry },
        hint: "register it: npx hardhat opg:tee:register (the TEE node's operator or signer)",
      },
    );

  // A registry that only implements ITeeRegistryCore records no measurement per enclave.
  let record: { node: string; expiresAt: bigint; measurement: string } | null = null;
  try {
    const r = (await registry.getFunction("getEnclave")(address)) as {
      node: string;
      expiresAt: bigint;
      measurement: string;
    };
    record = { node: r.node, expiresAt: r.expiresAt, measurement: r.measurement };
  } catch (error) {
    if (!isMissingFunction(error)) throw error;
    options.log?.warn(
      { at: "checkEnclave", teeRegistry },
      "the TeeRegistry records no measurement per enclave: checking only that it is active",
    );
  }
  const node =
    record?.node ?? getAddress(String(await registry.getFunction("nodeOfEnclave")(address)));
  if (node === ZeroAddress) throw notRegistered();

  if (record !== null) {
    if (record.measurement.toLowerCase() !== measurement.toLowerCase()) {
      throw new EnclaveCheckError(
        "measurement",
        `enclave ${address} attests image ${measurement} but is registered in TeeRegistry ${teeRegistry} with image ${record.measurement}`,
        {
          details: {
            enclave: address,
            teeRegistry,
            attested: measurement,
            registered: record.measurement,
          },
        },
      );
    }
    if (!(await registry.getFunction("isMeasurementApproved")(measurement))) {
      throw new EnclaveCheckError(
        "measurement",
        `image ${measurement} of enclave ${address} is not approved in TeeRegistry ${teeRegistry}`,
        { details: { enclave: address, teeRegistry, measurement } },
      );
    }
  }

  if (!(await registry.getFunction("isActiveEnclave")(address))) {
    const latest = await provider.getBlock("latest");
    const expiresAt = record?.expiresAt ?? null;
    const expired = expiresAt !== null && latest !== null && BigInt(latest.timestamp) >= expiresAt;
    throw new EnclaveCheckError(
      "inactive",
      expired
        ? `enclave ${address}'s registration in TeeRegistry ${teeRegistry} expired at ${new Date(Number(expiresAt) * 1000).toISOString()}`
        : `enclave ${address} is not active in TeeRegistry ${teeRegistry} (its node ${node} is not active in NodeStaking: jailed, unstaked or below the minimum)`,
      {
        details: {
          enclave: address,
          teeRegistry,
          node,
          ...(expiresAt !== null ? { expiresAt } : {}),
        },
        ...(expired ? { hint: "renew it: TeeRegistry.heartbeat(enclaveKey)" } : {}),
      },
    );
  }

  const checked: CheckedEnclave = {
    address,
    node,
    teeRegistry,
    measurement,
    expiresAt: record === null ? null : Number(record.expiresAt),
    moduleId: doc.moduleId,
    ageMs: verified.ageMs,
  };
  options.log?.info(
    { at: "checkEnclave", ...checked, url },
    "enclave attested, bound to this ledger and active in TeeRegistry",
  );
  return checked;
}

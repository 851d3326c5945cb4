/**
 * The bodies of the opg:stake:* and opg:tee:* Hardhat tasks: parse the arguments, load the contracts
 * from the deployment record, run an action, and return the text to print.
 */
import { readFile } from "node:fs/promises";

import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { Signer } from "ethers";
import { getAddress, getBytes, isHexString } from "ethers";

import type { NodeStaking, OPGToken, TeeRegistry } from "../../types/ethers-contracts/index.js";
import { BaseError, InputError } from "../common/errors.js";
import { readDocumentText } from "../tee/attestation.js";
import { collectAttesterSignatures } from "../tee/attester.js";
import { encodeQuorumAttestation } from "./attestation.js";
import * as actions from "./actions.js";
import { readAddresses, requireAddress } from "./addresses.js";
import {
  collectEnclaveStatuses,
  collectNodeStatuses,
  renderEnclaveTable,
  renderNodeTable,
} from "./status.js";
import {
  formatOpg,
  measurementFromPcrs,
  parseAddress,
  parseBytes32,
  parseOpg,
  parseRole,
} from "./units.js";

export interface TaskEnv {
  ethers: HardhatEthers;
  networkName: string;
  /** Repository root holding deployments/ (default: the working directory). */
  root?: string;
}

interface Handles {
  token: OPGToken;
  staking: NodeStaking;
  tee: TeeRegistry;
}

async function load(env: TaskEnv): Promise<Handles> {
  const addresses = await readAddresses(env.networkName, env.root);
  const at = (name: string) => requireAddress(addresses, name, env.networkName);
  return {
    token: await env.ethers.getContractAt("OPGToken", at("OPGToken")),
    staking: await env.ethers.getContractAt("NodeStaking", at("NodeStaking")),
    tee: await env.ethers.getContractAt("TeeRegistry", at("TeeRegistry")),
  };
}

export { recordName } from "../chain/deployment.js";

/** The configured account `from` (an address), or the first account. */
export async function pickSigner(ethers: HardhatEthers, from: string | undefined): Promise<Signer> {
  const signers = await ethers.getSigners();
  if (from === undefined || from === "") {
    const first = signers[0];
    if (first === undefined) throw new InputError("no account is configured for this network");
    return first;
  }
  const wanted = parseAddress(from, "from").toLowerCase();
  const found = signers.find((s) => s.address.toLowerCase() === wanted);
  if (found === undefined) {
    throw new InputError("--from is not one of the configured accounts", {
      details: { from, accounts: signers.length },
      hint: "add its key to the network's accounts (e.g. with the Hardhat keystore)",
    });
  }
  return found;
}

function need(value: string | undefined, option: string): string {
  if (value === undefined || value === "") {
    throw new InputError(`--${option} is required`, { hint: `pass --${option} <value>` });
  }
  return value;
}

async function now(ethers: HardhatEthers): Promise<bigint> {
  const block = await ethers.provider.getBlock("latest");
  return BigInt(block?.timestamp ?? 0);
}

export interface StakeRegisterArgs {
  node?: string;
  role?: string;
  signer?: string;
  amount?: string;
  metadata?: string;
  from?: string;
}

export async function stakeRegister(env: TaskEnv, args: StakeRegisterArgs): Promise<string> {
  const input = {
    node: parseAddress(need(args.node, "node"), "node"),
    role: parseRole(need(args.role, "role")),
    signer: parseAddress(need(args.signer, "signer"), "signer"),
    amount: parseOpg(need(args.amount, "amount")),
    metadataURI: need(args.metadata, "metadata"),
  };
  const h = await load(env);
  const operator = await pickSigner(env.ethers, args.from);
  const out = await actions.registerNode(h, operator, input);
  return `registered node ${input.node} with ${formatOpg(input.amount)} OPG (tx ${out.hash}, ${out.gasUsed} gas)`;
}

export interface StakeAmountArgs {
  node?: string;
  amount?: string;
  from?: string;
}

export async function stakeIncrease(env: TaskEnv, args: StakeAmountArgs): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const amount = parseOpg(need(args.amount, "amount"));
  const h = await load(env);
  const out = await actions.increaseStake(h, await pickSigner(env.ethers, args.from), node, amount);
  return `added ${formatOpg(amount)} OPG to ${node}: active stake ${formatOpg(out.active)} OPG (tx ${out.hash})`;
}

export async function stakeUnbond(env: TaskEnv, args: StakeAmountArgs): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const amount = parseOpg(need(args.amount, "amount"));
  const h = await load(env);
  const out = await actions.unbond(h, await pickSigner(env.ethers, args.from), node, amount);
  const release = new Date(Number(out.releaseTime) * 1000).toISOString();
  const warning = out.belowMinimum
    ? "\nwarning: the node's active stake is now below its role's minimum: it is inactive"
    : "";
  return `unbonding ${formatOpg(amount)} OPG from ${node}, withdrawable from ${release} (tx ${out.hash})${warning}`;
}

export async function stakeWithdraw(
  env: TaskEnv,
  args: { node?: string; from?: string },
): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const h = await load(env);
  const out = await actions.withdraw(h, await pickSigner(env.ethers, args.from), node);
  return `withdrew ${formatOpg(out.amount)} OPG from ${node} (tx ${out.hash})`;
}

export async function stakeStatus(env: TaskEnv, args: { node?: string }): Promise<string> {
  const only =
    args.node === undefined || args.node === "" ? undefined : parseAddress(args.node, "node");
  const h = await load(env);
  const statuses = await collectNodeStatuses(h.staking, only);
  if (only !== undefined && statuses.length === 0) {
    throw new InputError(`unknown node ${only}`, {
      hint: "run opg:stake:status without --node to list nodes",
    });
  }
  return renderNodeTable(statuses, await now(env.ethers));
}

export interface ApproveArgs {
  measurement?: string;
  pcr0?: string;
  pcr1?: string;
  pcr2?: string;
  label?: string;
  from?: string;
}

export async function teeApproveMeasurement(env: TaskEnv, args: ApproveArgs): Promise<string> {
  const pcrs = [args.pcr0, args.pcr1, args.pcr2].filter(
    (p): p is string => p !== undefined && p !== "",
  );
  let measurement: string;
  if (args.measurement !== undefined && args.measurement !== "") {
    if (pcrs.length > 0)
      throw new InputError("pass either --measurement or --pcr0/--pcr1/--pcr2, not both");
    measurement = parseBytes32(args.measurement, "measurement");
  } else {
    if (pcrs.length === 0) {
      throw new InputError("no measurement given", {
        hint: "pass --measurement 0x.. or --pcr0 --pcr1 --pcr2",
      });
    }
    measurement = measurementFromPcrs(pcrs);
  }
  const h = await load(env);
  const label = args.label ?? "";
  const out = await actions.approveMeasurement(
    h.tee,
    await pickSigner(env.ethers, args.from),
    measurement,
    label,
  );
  return `approved measurement ${measurement}${label ? ` (${label})` : ""} (tx ${out.hash})`;
}

export interface TeeRegisterArgs {
  node?: string;
  enclave?: string;
  measurement?: string;
  /** Hex bytes, or @path to a file holding the raw attestation bytes. */
  attestation?: string;
  /** Comma-separated signature files of quorum attesters (opg attester sign), instead of --attestation. */
  attesterSignatures?: string;
  from?: string;
}

/**
 * The attestation argument: `0x<hex>`, or `@file` holding the document as raw CBOR (what the NSM
 * device returns), base64 (what the enclave's GET /attestation answers in `document`) or hex text.
 * Quorum-verifier attestations (abi-encoded attester signatures) are passed as `0x<hex>` or a file
 * of hex text.
 */
export async function readAttestation(value: string): Promise<Uint8Array> {
  if (value.startsWith("@")) {
    const file = value.slice(1);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (cause) {
      throw new InputError("cannot read the attestation file", { details: { file }, cause });
    }
    try {
      return readDocumentText(bytes);
    } catch (cause) {
      throw new InputError("the attestation file is neither raw CBOR, base64 nor hex", {
        details: { file },
        cause,
      });
    }
  }
  if (!isHexString(value) || value.length <= 2) {
    throw new InputError("the attestation is neither hex bytes nor @file", {
      details: { attestation: value.length > 40 ? `${value.slice(0, 40)}…` : value },
      hint: "pass --attestation 0x<hex> or --attestation @path/to/document (raw CBOR, base64 or hex)",
    });
  }
  return getBytes(value);
}

export async function teeRegister(env: TaskEnv, args: TeeRegisterArgs): Promise<string> {
  const h = await load(env);
  let input: { node: string; enclaveKey: string; measurement: string; attestation: Uint8Array };
  if (args.attesterSignatures !== undefined && args.attesterSignatures !== "") {
    if (args.attestation !== undefined && args.attestation !== "")
      throw new InputError("pass --attestation or --attester-signatures, not both");
    input = await quorumInput(env, h.tee, args, args.attesterSignatures);
  } else {
    input = {
      node: parseAddress(need(args.node, "node"), "node"),
      enclaveKey: parseAddress(need(args.enclave, "enclave"), "enclave"),
      measurement: parseBytes32(need(args.measurement, "measurement"), "measurement"),
      attestation: await readAttestation(need(args.attestation, "attestation")),
    };
  }
  const { enclaveKey, node } = input;
  const out = await actions.registerEnclave(
    h.tee,
    h.staking,
    await pickSigner(env.ethers, args.from),
    input,
  );
  const expires = new Date(Number(out.expiresAt) * 1000).toISOString();
  return `registered enclave ${enclaveKey} for ${node}, fresh until ${expires} (tx ${out.hash})`;
}

/**
 * The registration the attesters signed (offchain/tee/attester.ts): node, enclave and measurement from
 * their common statement (any given flag must agree), for the verifier TeeRegistry uses, encoded as
 * QuorumAttestationVerifier takes it (signatures sorted by signer).
 */
async function quorumInput(
  env: TaskEnv,
  tee: { verifier(): Promise<string> },
  args: TeeRegisterArgs,
  list: string,
): Promise<{ node: string; enclaveKey: string; measurement: string; attestation: Uint8Array }> {
  const files = await Promise.all(
    list
      .split(",")
      .map((f) => f.trim())
      .filter((f) => f !== "")
      .map(async (name) => {
        let text: string;
        try {
          text = await readFile(name, "utf8");
        } catch (cause) {
          throw new InputError(`cannot read the attester signature file ${name}`, {
            details: { file: name },
            cause,
          });
        }
        try {
          return { name, json: JSON.parse(text) as unknown };
        } catch (cause) {
          throw new InputError(`${name} is not JSON`, { details: { file: name }, cause });
        }
      }),
  );
  const { statement, domain, signatures, attesters } = collectAttesterSignatures(files);
  const verifier = getAddress(await tee.verifier());
  if (getAddress(String(domain.verifyingContract)) !== verifier)
    throw new InputError("the attesters signed for another verifier than TeeRegistry's", {
      details: { signedFor: domain.verifyingContract, verifier },
    });
  // The quorum, read from the verifier: say what is missing instead of sending a doomed transaction.
  const quorum = await env.ethers.getContractAt("QuorumAttestationVerifier", verifier);
  const strangers: string[] = [];
  for (const a of attesters) if (!(await quorum.isAttester(a))) strangers.push(a);
  if (strangers.length > 0)
    throw new InputError(`${strangers.join(", ")} is not an attester of the quorum verifier`, {
      details: { verifier, attesters: (await quorum.attesters()).join(", ") },
    });
  const threshold = await quorum.threshold();
  if (BigInt(signatures.length) < threshold)
    throw new InputError(
      `${signatures.length} attester signature(s) given; the quorum verifier needs ${threshold}`,
      {
        details: { verifier, signedBy: attesters.join(", "), threshold },
        hint: "collect more signatures with opg attester sign (each attester runs it)",
      },
    );
  for (const [flag, given, signed] of [
    ["node", args.node, statement.node],
    ["enclave", args.enclave, statement.enclaveKey],
    ["measurement", args.measurement, statement.measurement],
  ] as const) {
    if (given !== undefined && given !== "" && given.toLowerCase() !== signed.toLowerCase())
      throw new InputError(`--${flag} ${given} is not the one the attesters signed (${signed})`);
  }
  return {
    node: getAddress(statement.node),
    enclaveKey: getAddress(statement.enclaveKey),
    measurement: statement.measurement,
    attestation: getBytes(encodeQuorumAttestation(domain, statement, signatures)),
  };
}

export async function stakeHeartbeat(
  env: TaskEnv,
  args: { node?: string; from?: string },
): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const h = await load(env);
  const out = await actions.heartbeatNode(h.staking, await pickSigner(env.ethers, args.from), node);
  const deadline = new Date(Number(out.deadline) * 1000).toISOString();
  return `heartbeat for ${node} (tx ${out.hash}, ${out.gasUsed} gas); next one due before ${deadline}`;
}

export async function teeHeartbeat(
  env: TaskEnv,
  args: { enclave?: string; from?: string },
): Promise<string> {
  const enclaveKey = parseAddress(need(args.enclave, "enclave"), "enclave");
  const h = await load(env);
  const out = await actions.heartbeatEnclave(
    h.tee,
    h.staking,
    await pickSigner(env.ethers, args.from),
    enclaveKey,
  );
  const expires = new Date(Number(out.expiresAt) * 1000).toISOString();
  return `heartbeat for enclave ${enclaveKey} (tx ${out.hash}): fresh until ${expires}`;
}

export async function teeRenew(
  env: TaskEnv,
  args: { enclave?: string; attestation?: string; attesterSignatures?: string; from?: string },
): Promise<string> {
  const enclaveKey = parseAddress(need(args.enclave, "enclave"), "enclave");
  const h = await load(env);
  let attestation: Uint8Array;
  if (args.attesterSignatures !== undefined && args.attesterSignatures !== "") {
    if (args.attestation !== undefined && args.attestation !== "")
      throw new InputError("pass --attestation or --attester-signatures, not both");
    // The attesters must have signed for the node the enclave is bound to.
    const bound = (await h.tee.getEnclave(enclaveKey)).node;
    attestation = (
      await quorumInput(env, h.tee, { node: bound, enclave: enclaveKey }, args.attesterSignatures)
    ).attestation;
  } else {
    attestation = await readAttestation(need(args.attestation, "attestation"));
  }
  const out = await actions.renewEnclave(
    h.tee,
    h.staking,
    await pickSigner(env.ethers, args.from),
    enclaveKey,
    attestation,
  );
  const expires = new Date(Number(out.expiresAt) * 1000).toISOString();
  return `renewed enclave ${enclaveKey} with a fresh attestation (tx ${out.hash}): fresh until ${expires}`;
}

export async function stakeRotateSigner(
  env: TaskEnv,
  args: { node?: string; signer?: string; from?: string },
): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const signer = parseAddress(need(args.signer, "signer"), "signer");
  const h = await load(env);
  const out = await actions.rotateSigner(
    h.staking,
    await pickSigner(env.ethers, args.from),
    node,
    signer,
  );
  return `rotated ${node}'s signer ${out.oldSigner} -> ${signer} (tx ${out.hash}); the old key stays bound to ${node} for evidence it signed, and serves no more`;
}

export async function stakeSetPayee(
  env: TaskEnv,
  args: { node?: string; payee?: string; from?: string },
): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const payee = parseAddress(need(args.payee, "payee"), "payee");
  const h = await load(env);
  const out = await actions.setPayee(
    h.staking,
    await pickSigner(env.ethers, args.from),
    node,
    payee,
  );
  return `fees of ${node} now go to ${payee} (tx ${out.hash})`;
}

export async function stakeUnjail(
  env: TaskEnv,
  args: { node?: string; from?: string },
): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const h = await load(env);
  const out = await actions.unjail(h.staking, await pickSigner(env.ethers, args.from), node);
  return `unjailed ${node} (tx ${out.hash}); its heartbeat clock restarts now`;
}

export async function stakeExit(
  env: TaskEnv,
  args: { node?: string; from?: string },
): Promise<string> {
  const node = parseAddress(need(args.node, "node"), "node");
  const h = await load(env);
  const out = await actions.exitNode(h.staking, await pickSigner(env.ethers, args.from), node);
  return `${node} exited: ${formatOpg(out.amount)} OPG unbonding (still slashable until it is withdrawn) (tx ${out.hash})`;
}

export async function teeDeregister(
  env: TaskEnv,
  args: { enclave?: string; from?: string },
): Promise<string> {
  const enclaveKey = parseAddress(need(args.enclave, "enclave"), "enclave");
  const h = await load(env);
  const out = await actions.deregisterEnclave(
    h.tee,
    h.staking,
    await pickSigner(env.ethers, args.from),
    enclaveKey,
  );
  return `deregistered enclave ${enclaveKey} (tx ${out.hash}); the key serves no more, its binding to its node stays for evidence`;
}

export async function teeStatus(env: TaskEnv): Promise<string> {
  const h = await load(env);
  return renderEnclaveTable(await collectEnclaveStatuses(h.tee), await now(env.ethers));
}

/** Runs a task body: prints its result, or a BaseError's readable form and sets the exit code. */
export async function runTask(body: () => Promise<string>): Promise<void> {
  try {
    console.log(await body());
  } catch (error) {
    if (!(error instanceof BaseError)) throw error;
    console.error(error.format());
    process.exitCode = error.exitCode;
  }
}

/**
 * `opg attester sign`: an attester of the quorum verifier checks an enclave's Nitro attestation document
 * itself (offchain/tee/attester.ts: root, approved PCRs, key binding, freshness) and signs its EIP-712
 * statement. The signature file it writes goes to the node operator, who registers the enclave with M of
 * them (`npx hardhat opg:tee:register --attester-signatures a.json,b.json`).
 *
 * With `--rpc` and `--deployment` it reads the chain: chain id, TeeRegistry's verifier (the EIP-712
 * domain) and approved measurements, the ledger user_data must bind. Offline, `--chain-id`, `--verifier`
 * and `--pcrs` say the same. Exit 0 signed, 1 refused (the failing check named), 2 bad arguments.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";

import type { Command } from "commander";
import { Contract, JsonRpcProvider, getAddress, isAddress } from "ethers";

import { InputError } from "../../common/errors.js";
import { stringifyJson } from "../../common/json.js";
import { loadAbi } from "../../chain/artifacts.js";
import { loadWallets } from "../../relayer/config.js";
import { readDocumentText, type PcrPolicy } from "../../tee/attestation.js";
import {
  checkForAttestation,
  signChecked,
  type AttesterCheckInput,
  type AttesterSignatureFile,
} from "../../tee/attester.js";
import { AWS_NITRO_ROOT_G1_PEM } from "../../tee/awsRoot.js";

export const DEFAULT_ATTESTER_KEY = "OPG_ATTESTER_KEY";

export interface SignFlags {
  attestation: string;
  node: string;
  enclave?: string;
  rpc?: string;
  deployment?: string;
  chainId?: string;
  verifier?: string;
  ledger?: string;
  pcrs?: string;
  root?: string;
  maxAge: string;
  at?: string;
  key: string;
  keystore?: string | boolean;
  out?: string;
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new InputError(`cannot read ${what} ${file}`, { details: { file }, cause });
  }
}

function address(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (!isAddress(value))
    throw new InputError(`${flag} must be an address`, { details: { [flag]: value } });
  return getAddress(value);
}

function policy(file: string): PcrPolicy {
  let json: unknown;
  try {
    json = JSON.parse(read(file, "PCR policy").toString("utf8"));
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError(`PCR policy ${file} is not JSON`, { details: { file }, cause });
  }
  const sets = Array.isArray(json) ? json : [json];
  if (!sets.every((s) => typeof s === "object" && s !== null))
    throw new InputError(`PCR policy ${file} must be { "0": hex, "1": hex, "2": hex } or a list`);
  return sets as PcrPolicy;
}

/** Where the attester reads what it checks against: the chain, or the flags. */
async function context(flags: SignFlags): Promise<
  Pick<AttesterCheckInput, "chainId" | "verifier" | "ledger" | "isApproved"> & {
    close: () => void;
  }
> {
  if (flags.rpc === undefined) {
    if (flags.chainId === undefined || flags.verifier === undefined)
      throw new InputError("without --rpc, --chain-id and --verifier must be given", {
        hint: "pass --rpc <url> --deployment deployments/<network> to read them from the chain",
      });
    if (!/^[0-9]+$/.test(flags.chainId))
      throw new InputError("--chain-id must be a decimal integer", {
        details: { chainId: flags.chainId },
      });
    const ledger = address(flags.ledger, "--ledger");
    return {
      chainId: BigInt(flags.chainId),
      verifier: address(flags.verifier, "--verifier")!,
      ...(ledger === undefined ? {} : { ledger }),
      close: () => {},
    };
  }
  if (flags.deployment === undefined)
    throw new InputError("--rpc needs --deployment (the network's deployments/<network> folder)");
  const file = path.join(flags.deployment, "addresses.json");
  let addresses: Record<string, string>;
  try {
    addresses = JSON.parse(read(file, "addresses").toString("utf8")) as Record<string, string>;
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError(`${file} is not JSON`, { details: { file }, cause });
  }
  const teeAddress = address(addresses.TeeRegistry, "TeeRegistry in addresses.json");
  if (teeAddress === undefined)
    throw new InputError(`${file} has no TeeRegistry`, { details: { file } });
  const provider = new JsonRpcProvider(flags.rpc);
  const tee = new Contract(
    teeAddress,
    loadAbi("contracts/tee/TeeRegistry.sol", "TeeRegistry"),
    provider,
  );
  const { chainId } = await provider.getNetwork();
  const verifier = getAddress(String(await tee.getFunction("verifier")()));
  const recorded = addresses.QuorumAttestationVerifier;
  if (recorded === undefined || getAddress(recorded) !== verifier)
    throw new InputError(
      `TeeRegistry's verifier ${verifier} is not the QuorumAttestationVerifier of ${file}`,
      { details: { verifier, recorded: recorded ?? null } },
    );
  const given = address(flags.verifier, "--verifier");
  if (given !== undefined && given !== verifier)
    throw new InputError(`--verifier ${given} is not TeeRegistry's verifier ${verifier}`);
  const ledger = address(flags.ledger ?? addresses.InferenceLedger, "--ledger");
  return {
    chainId,
    verifier,
    ...(ledger === undefined ? {} : { ledger }),
    isApproved: async (m) => Boolean(await tee.getFunction("isMeasurementApproved")(m)),
    close: () => provider.destroy(),
  };
}

export async function signCommand(flags: SignFlags): Promise<AttesterSignatureFile> {
  const document = readDocumentText(read(flags.attestation, "attestation document"));
  const maxAge = Number(flags.maxAge);
  if (!Number.isFinite(maxAge) || maxAge <= 0)
    throw new InputError("--max-age must be seconds > 0", { details: { maxAge: flags.maxAge } });
  const at = flags.at === undefined ? new Date() : new Date(flags.at);
  if (Number.isNaN(at.getTime()))
    throw new InputError(`--at is not an ISO time: ${flags.at}`, { details: { at: flags.at } });
  const node = address(flags.node, "--node")!;
  const enclaveKey = address(flags.enclave, "--enclave");
  const [attester] = await loadWallets(
    flags.keystore === undefined
      ? { source: "env" }
      : {
          source: "keystore",
          keystorePath: typeof flags.keystore === "string" ? flags.keystore : undefined,
        },
    [flags.key],
  );
  const chain = await context(flags);
  try {
    const checked = await checkForAttestation({
      document,
      roots: [
        flags.root === undefined
          ? AWS_NITRO_ROOT_G1_PEM
          : read(flags.root, "root certificate").toString("utf8"),
      ],
      node,
      chainId: chain.chainId,
      verifier: chain.verifier,
      ...(chain.ledger === undefined ? {} : { ledger: chain.ledger }),
      ...(enclaveKey === undefined ? {} : { enclaveKey }),
      ...(flags.pcrs === undefined ? {} : { approvedPcrs: policy(flags.pcrs) }),
      ...(chain.isApproved === undefined ? {} : { isApproved: chain.isApproved }),
      maxAgeMs: maxAge * 1000,
      at,
    });
    const signed = await signChecked(attester!, checked);
    if (flags.out !== undefined) await writeFile(flags.out, stringifyJson(signed) + "\n");
    return signed;
  } finally {
    chain.close();
  }
}

export function register(program: Command): void {
  const attester = program
    .command("attester")
    .description("quorum verifier attesters: check a Nitro attestation document and sign it");
  attester
    .command("sign")
    .description(
      "verify an enclave's attestation document (root, approved PCRs, key binding, freshness) and sign its EIP-712 statement",
    )
    .requiredOption("--attestation <file>", "the document (raw CBOR, base64 or hex)")
    .requiredOption("--node <address>", "the VERIFIER node the enclave registers under")
    .option("--enclave <address>", "the enclave key the document must bind")
    .option("--rpc <url>", "JSON-RPC URL of the chain (reads the verifier and approved images)")
    .option("--deployment <dir>", "deployments/<network> (its addresses.json), with --rpc")
    .option("--chain-id <id>", "without --rpc: the chain id")
    .option("--verifier <address>", "without --rpc: the QuorumAttestationVerifier")
    .option("--ledger <address>", "the InferenceLedger user_data must bind (default: the record's)")
    .option("--pcrs <file>", 'approved PCRs: {"0": hex, "1": hex, "2": hex} or a list of them')
    .option("--root <pem>", "trusted root certificate (PEM file); default: the AWS Nitro root G1")
    .option("--max-age <seconds>", "largest accepted document age", "600")
    .option("--at <iso>", "the attester's clock (ISO 8601); default: now")
    .option(
      "--key <name>",
      "environment variable (or keystore entry) holding the attester's private key",
      DEFAULT_ATTESTER_KEY,
    )
    .option(
      "--keystore [file]",
      "read --key from the Hardhat keystore (default path; password from OPG_KEYSTORE_PASSWORD or asked)",
    )
    .option("--out <file>", "write the signature file here")
    .action(async (flags: SignFlags) => {
      console.log(stringifyJson(await signCommand(flags)));
    });
}

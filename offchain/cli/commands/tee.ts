/**
 * `opg tee verify <document>`: verifies a Nitro attestation document (file with base64, hex or
 * raw CBOR) against a trusted root (the AWS Nitro root by default), and prints what it attests.
 * A debug-mode document (PCRs all zero) fails unless --allow-debug is given.
 * Exit code 0 when every check passes, 1 when one fails (the failing check is named), 2 for bad
 * arguments.
 */
import { readFileSync } from "node:fs";

import type { Command } from "commander";

import { InputError } from "../../common/errors.js";
import { stringifyJson } from "../../common/json.js";
import {
  AttestationError,
  parseCoseSign1,
  parsePayload,
  readDocumentText,
  verifyAttestation,
  type AttestationDocument,
  type PcrPolicy,
} from "../../tee/attestation.js";
import { AWS_NITRO_ROOT_G1_PEM } from "../../tee/awsRoot.js";

interface VerifyFlags {
  root?: string;
  at?: string;
  nonce?: string;
  maxAge?: string;
  pcrs?: string;
  allowDebug?: boolean;
  json?: boolean;
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new InputError(`cannot read ${what} ${path}`, { details: { path }, cause });
  }
}

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const d = new Date(at);
  if (Number.isNaN(d.getTime()))
    throw new InputError(`--at is not an ISO time: ${at}`, { details: { at } });
  return d;
}

function parseHex(value: string, flag: string): Buffer {
  if (!/^(0x)?([0-9a-fA-F]{2})+$/.test(value))
    throw new InputError(`${flag} must be hex bytes`, { details: { [flag]: value } });
  return Buffer.from(value.replace(/^0x/, ""), "hex");
}

function parsePolicy(path: string): PcrPolicy {
  let json: unknown;
  try {
    json = JSON.parse(readFile(path, "PCR policy").toString("utf8"));
  } catch (cause) {
    if (cause instanceof InputError) throw cause;
    throw new InputError(`PCR policy ${path} is not JSON`, { details: { path }, cause });
  }
  const sets = Array.isArray(json) ? json : [json];
  if (
    !sets.every(
      (s) =>
        typeof s === "object" &&
        s !== null &&
        Object.values(s as object).every((v) => typeof v === "string"),
    )
  ) {
    throw new InputError(
      `PCR policy ${path} must be { "0": hex, "1": hex, ... } or a list of them`,
      { details: { path } },
    );
  }
  return sets as PcrPolicy;
}

function describe(doc: AttestationDocument): Record<string, unknown> {
  const hex = (b: Uint8Array | null | undefined): string | null =>
    b == null ? null : Buffer.from(b).toString("hex");
  return {
    moduleId: doc.moduleId,
    timestamp: new Date(doc.timestamp).toISOString(),
    pcr0: hex(doc.pcrs.get(0)),
    pcr1: hex(doc.pcrs.get(1)),
    pcr2: hex(doc.pcrs.get(2)),
    publicKey: hex(doc.publicKey),
    userData: hex(doc.userData),
    nonce: hex(doc.nonce),
  };
}

export function verifyCommand(documentPath: string, flags: VerifyFlags): number {
  const bytes = readDocumentText(readFile(documentPath, "attestation document"));
  const root =
    flags.root === undefined
      ? AWS_NITRO_ROOT_G1_PEM
      : readFile(flags.root, "root certificate").toString("utf8");
  const at = parseAt(flags.at);
  const maxAgeMs = flags.maxAge === undefined ? undefined : Number(flags.maxAge) * 1000;
  if (maxAgeMs !== undefined && !(maxAgeMs >= 0))
    throw new InputError(`--max-age must be seconds >= 0`, { details: { maxAge: flags.maxAge } });
  const options = {
    roots: [root],
    at,
    ...(flags.nonce !== undefined ? { nonce: parseHex(flags.nonce, "--nonce") } : {}),
    ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
    ...(flags.pcrs !== undefined ? { approvedPcrs: parsePolicy(flags.pcrs) } : {}),
    allowDebug: flags.allowDebug === true,
  };
  let fields: Record<string, unknown> = {};
  try {
    fields = describe(parsePayload(parseCoseSign1(bytes).payload));
  } catch {
    // the verifier below reports the failing check
  }
  let result: Record<string, unknown>;
  try {
    const verified = verifyAttestation(bytes, options);
    result = {
      ok: true,
      at: at.toISOString(),
      ...describe(verified.document),
      chain: verified.chain,
      ageMs: verified.ageMs,
      debug: verified.debug,
    };
  } catch (error) {
    if (!(error instanceof AttestationError)) throw error;
    result = {
      ok: false,
      at: at.toISOString(),
      check: error.check,
      error: error.message,
      details: error.details,
      ...fields,
    };
  }
  if (flags.json === true) console.log(stringifyJson(result));
  else {
    for (const key of [
      "moduleId",
      "timestamp",
      "pcr0",
      "pcr1",
      "pcr2",
      "publicKey",
      "userData",
      "nonce",
    ]) {
      if (!(key in result)) continue;
      const value = result[key];
      console.log(`${key.padEnd(10)} ${typeof value === "string" ? value : "(none)"}`);
    }
    console.log(`${"at".padEnd(10)} ${at.toISOString()}`);
    if (result.debug === true)
      console.log(`${"debug".padEnd(10)} yes: PCRs are all zero (accepted with --allow-debug)`);
    console.log(
      result.ok === true
        ? "verdict    VALID: every check passed"
        : `verdict    INVALID: ${String(result.error)}`,
    );
  }
  return result.ok === true ? 0 : 1;
}

export function register(program: Command): void {
  const tee = program.command("tee").description("TEE attestation tools (AWS Nitro format)");
  tee
    .command("verify")
    .description(
      "verify a Nitro attestation document: COSE/ES384 signature, chain to the root, validity, age, nonce, PCRs",
    )
    .argument("<document>", "file holding the document (base64, hex or raw CBOR)")
    .option("--root <pem>", "trusted root certificate (PEM file); default: the AWS Nitro root G1")
    .option("--at <iso>", "verification time (ISO 8601); default: now")
    .option("--nonce <hex>", "the nonce the document must carry")
    .option("--max-age <seconds>", "largest accepted document age; default 600")
    .option("--pcrs <json>", 'approved PCR policy file: {"0": hex, "1": hex, "2": hex} or a list')
    .option(
      "--allow-debug",
      "accept a debug-mode document (PCRs all zero: the host can read the enclave's memory)",
    )
    .option("--json", "print the result as JSON")
    .action((document: string, flags: VerifyFlags) => {
      process.exitCode = verifyCommand(document, flags);
    });
}

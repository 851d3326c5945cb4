/**
 * The receipt bundle: everything a third party needs to check one inference against the chain,
 * as one JSON file (format "opg-receipt-bundle-v2", documented in docs/anchoring.md; v2 adds the
 * verdict's timestamp). Integers that may exceed 2^53 (chainId, the receipt's and the verdict's
 * timestamps, batchId) are decimal strings.
 */
import { isAddress, isHexString } from "ethers";
import { z } from "zod";

import { InputError } from "../common/errors.js";
import { stringifyJson } from "../common/json.js";
import type { Receipt, Verdict } from "./eip712.js";
import { buildReceipt } from "./receipts.js";

export const BUNDLE_FORMAT = "opg-receipt-bundle-v2";

export interface ReceiptBundle {
  format: typeof BUNDLE_FORMAT;
  chainId: bigint;
  ledger: string;
  receipt: Receipt;
  /** The GPU node signer's EIP-712 signature over `receipt`. */
  nodeSignature: string;
  /** The enclave's verdict, when this receipt was re-executed (sampling). */
  verdict?: Verdict;
  /** The enclave's EIP-712 signature over `verdict` (present exactly when `verdict` is). */
  enclaveSignature?: string;
  batchId: bigint;
  /** Sibling hashes from the receipt's leaf to the batch root (OZ MerkleProof order). */
  proof: string[];
  /** The transaction that anchored the batch. */
  anchorTx: string;
}

const hex32 = z
  .string()
  .refine((v) => isHexString(v, 32), "expected a 0x-prefixed 32-byte hex string");
const address = z.string().refine((v) => isAddress(v), "expected an address");
const signature = z.string().refine((v) => isHexString(v, 65), "expected a 65-byte hex signature");
const uintString = z
  .union([z.string(), z.number().int().nonnegative()])
  .refine((v) => /^\d+$/.test(String(v)), "expected a non-negative decimal integer")
  .transform((v) => BigInt(v));

const schema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    chainId: uintString,
    ledger: address,
    receipt: z.object({
      requestId: hex32,
      modelId: hex32,
      inputHash: hex32,
      outputHash: hex32,
      node: address,
      execConfigHash: hex32,
      timestamp: uintString,
    }),
    nodeSignature: signature,
    verdict: z
      .object({ receiptHash: hex32, agree: z.boolean(), outputHash: hex32, timestamp: uintString })
      .optional(),
    enclaveSignature: signature.optional(),
    batchId: uintString,
    proof: z.array(hex32),
    anchorTx: hex32,
  })
  .refine((b) => (b.verdict === undefined) === (b.enclaveSignature === undefined), {
    message: "verdict and enclaveSignature come together",
    path: ["enclaveSignature"],
  });

/** Parses and validates a bundle; throws InputError naming every bad field. */
export function parseReceiptBundle(text: string): ReceiptBundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError("receipt bundle is not valid JSON", { cause });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new InputError("receipt bundle is malformed", {
      details: { issues },
      hint: `expected format "${BUNDLE_FORMAT}" (see docs/anchoring.md)`,
    });
  }
  const b = parsed.data;
  const bundle: ReceiptBundle = {
    format: BUNDLE_FORMAT,
    chainId: b.chainId,
    ledger: b.ledger,
    receipt: buildReceipt(b.receipt),
    nodeSignature: b.nodeSignature,
    batchId: b.batchId,
    proof: b.proof,
    anchorTx: b.anchorTx,
  };
  if (b.verdict !== undefined && b.enclaveSignature !== undefined) {
    bundle.verdict = b.verdict;
    bundle.enclaveSignature = b.enclaveSignature;
  }
  return bundle;
}

/** The bundle as pretty JSON (bigints as decimal strings), parseable by `parseReceiptBundle`. */
export function formatReceiptBundle(bundle: ReceiptBundle): string {
  return stringifyJson(bundle) + "\n";
}

/** A bundle from its parts (the relayer's view after anchoring): sets the format tag. */
export function buildReceiptBundle(fields: Omit<ReceiptBundle, "format">): ReceiptBundle {
  return { format: BUNDLE_FORMAT, ...fields };
}

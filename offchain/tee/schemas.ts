/** Wire formats of the enclave's API (JSON), validated with zod. */
import { z } from "zod";

import { isValidAddress } from "../chain/address.js";
import { InputError } from "../common/errors.js";
import type { Receipt } from "../chain/eip712.js";

const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "0x + 64 hex digits");
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "0x + 40 hex digits")
  .refine(isValidAddress, "not a valid address (mixed-case checksum does not match)");
const uint = (bits: number) =>
  z
    .union([
      z.string().regex(/^[0-9]+$/, "a decimal integer"),
      z.number().int().nonnegative(),
      z.bigint().nonnegative(),
    ])
    .transform((v) => BigInt(v))
    .refine((v) => v < 2n ** BigInt(bits), `must fit in uint${bits}`);

export const receiptSchema = z.strictObject({
  requestId: bytes32,
  modelId: bytes32,
  inputHash: bytes32,
  outputHash: bytes32,
  node: address,
  execConfigHash: bytes32,
  timestamp: uint(64),
});

const tensorJson = z.strictObject({
  dims: z.array(z.number()),
  data: z.array(z.union([z.number(), z.string(), z.boolean()])),
});

const signature = z.string().regex(/^0x[0-9a-fA-F]{130}$/, "0x + 130 hex digits (r, s, v)");

/** One receipt sent to the enclave's log: the node's signed receipt with the inputs and outputs it is about. */
export const submitItemSchema = z.strictObject({
  receipt: receiptSchema,
  /** The node signer's EIP-712 signature over the receipt. */
  nodeSignature: signature,
  inputs: z.record(z.string(), tensorJson),
  /** The GPU node's quantised outputs (their hash is the receipt's outputHash). */
  outputs: z.array(z.unknown()),
  /** Re-execute whatever the draw says (on-chain requests: fulfil needs an agreeing verdict). */
  force: z.boolean().optional(),
});

export type SubmitItem = z.output<typeof submitItemSchema>;

export function parseWith<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new InputError(`invalid ${what}`, {
    details: {
      problems: result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
    },
  });
}

export function parseReceipt(value: unknown): Receipt {
  return parseWith(receiptSchema, value, "receipt");
}

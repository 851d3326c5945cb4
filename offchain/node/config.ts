/**
 * `opg node run`'s configuration: one JSON file validated with zod (every problem listed with its
 * path, exit code 2). The node's signer key pays for heartbeats and registrations; it comes from the
 * environment or the Hardhat keystore, never from the file.
 */
import { readFileSync } from "node:fs";

import { isAddress } from "ethers";
import { z } from "zod";

import { checkClockMode } from "../chain/clock.js";
import { InputError } from "../common/errors.js";

const address = z.string().refine((v) => isAddress(v), "expected an address (0x + 40 hex digits)");

export const nodeConfigSchema = z.strictObject({
  chain: z.strictObject({
    rpcUrl: z.url(),
    chainId: z.number().int().positive(),
    /** InferenceLedger: NodeStaking and TeeRegistry are read from it. */
    ledger: address,
    pollIntervalMs: z.number().int().min(10).max(60_000).default(1_000),
    clock: z.enum(["system", "chain"]).optional(),
  }),
  /** The node (NodeStaking id) this service keeps alive. */
  node: z.strictObject({ address }),
  /** A VERIFIER node's enclave: kept registered and renewed with fresh attestations. */
  enclave: z.strictObject({ url: z.url() }).optional(),
  keeper: z
    .strictObject({
      /** Heartbeat this often (seconds; default: a third of NodeStaking's heartbeat timeout). */
      heartbeatEverySeconds: z.number().int().min(1).optional(),
      /** Renew the enclave when fewer seconds are left (default: a third of the lifetime). */
      renewBeforeSeconds: z.number().int().min(1).optional(),
    })
    .prefault({}),
  store: z.strictObject({ path: z.string().min(1) }),
  keys: z
    .strictObject({
      source: z.enum(["env", "keystore"]).default("env"),
      keystorePath: z.string().min(1).optional(),
      signerKeyName: z.string().min(1).default("OPG_NODE_SIGNER_KEY"),
    })
    .prefault({}),
  sender: z
    .strictObject({
      confirmations: z.number().int().min(1).max(1_000).default(1),
      stuckAfterMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
      feeBumpPercent: z.number().int().min(10).max(1_000).default(12),
    })
    .prefault({}),
  api: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65_535).default(8090),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    })
    .prefault({}),
});

export type NodeConfig = z.output<typeof nodeConfigSchema>;

export function parseNodeConfig(input: unknown, source = "config"): NodeConfig {
  const result = nodeConfigSchema.safeParse(input);
  if (!result.success) {
    throw new InputError(`invalid node config (${source})`, {
      details: {
        problems: result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
      },
      hint: "see docs/operations.md",
    });
  }
  const config = result.data;
  if (config.chain.clock !== undefined)
    checkClockMode(config.chain.clock, BigInt(config.chain.chainId));
  return config;
}

export function loadNodeConfig(file: string): NodeConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new InputError(`cannot read node config ${file} (JSON)`, { details: { file }, cause });
  }
  return parseNodeConfig(json, file);
}

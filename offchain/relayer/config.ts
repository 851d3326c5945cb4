/**
 * The relayer's configuration: one JSON file validated with zod, then environment overrides
 * (OPG_RELAYER_*). Keys never live in the file: the GPU node's signing key and the transaction key
 * come from OPG_NODE_SIGNER_KEY and OPG_RELAYER_TX_KEY (see `loadSecrets`) and are never logged.
 */
import { readFileSync } from "node:fs";

import { Wallet, isAddress, isHexString } from "ethers";
import { z } from "zod";

import { InputError } from "../common/errors.js";
import { engineConfigSchema } from "../inference/provider.js";

const address = z.string().refine((v) => isAddress(v), "expected an address (0x + 40 hex digits)");
const port = z.number().int().min(0).max(65_535);

export const relayerConfigSchema = z.strictObject({
  chain: z.strictObject({
    rpcUrl: z.url(),
    chainId: z.number().int().positive(),
    ledger: address,
    /** Block the ledger was deployed at: where event scans start. */
    deployBlock: z.number().int().min(0).default(0),
    pollIntervalMs: z.number().int().min(10).max(60_000).default(500),
  }),
  /** The GPU node id (NodeStaking) this relayer signs receipts for. */
  node: z.strictObject({ address }),
  enclave: z.strictObject({
    url: z.url(),
    /**
     * Fraction of receipts the enclave re-executes, chosen by the enclave after the node signed
     * (1 = all; 0.01 = one in a hundred). On-chain requests are always re-executed (fulfil needs a verdict).
     */
    sampleRate: z.number().min(0).max(1).default(1),
  }),
  models: z.strictObject({
    dir: z.string().min(1),
    engine: engineConfigSchema.default({
      provider: "auto",
      allowCpuFallback: true,
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      maxConcurrentRuns: 4,
    }),
  }),
  api: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: port.default(8080),
      /** Largest request body accepted (HTTP 413 above). */
      bodyLimitBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .default(256 * 1024),
    })
    .prefault({}),
  batch: z
    .strictObject({
      /** A batch is cut when this many receipts wait ... */
      maxSize: z.number().int().min(1).max(65_536).default(1024),
      /** ... or when the oldest has waited this long. */
      maxAgeMs: z.number().int().min(10).max(3_600_000).default(2_000),
    })
    .prefault({}),
  listener: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Blocks a request's log must be buried under before it is served. */
      confirmations: z.number().int().min(0).max(1_000).default(2),
      /** Largest block range per eth_getLogs call. */
      maxBlockRange: z.number().int().min(1).max(100_000).default(2_000),
    })
    .prefault({}),
  store: z.strictObject({ path: z.string().min(1) }),
  /** The transaction sender (offchain/relayer/sender/, docs/relayer-sender.md). */
  sender: z
    .strictObject({
      /** Blocks on top of and including a transaction's block before its outcome is final. */
      confirmations: z.number().int().min(1).max(1_000).default(1),
      /** A transaction not mined this long is replaced with bumped fees (same nonce). */
      stuckAfterMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
      /** Fee raise on a replacement, percent (>= 10, the nodes' replacement rule). */
      feeBumpPercent: z.number().int().min(10).max(1_000).default(12),
      /** Never pay more than this max fee per gas (wei, decimal string). */
      maxFeePerGasWei: z
        .string()
        .regex(/^[1-9][0-9]*$/, "expected a positive decimal integer (wei)")
        .optional(),
    })
    .prefault({}),
  /** Submit reportContradictedReceipt when the enclave disagrees with a receipt. */
  evidence: z.strictObject({ submit: z.boolean().default(true) }).prefault({}),
  /** Debugging only: refused unless chainId is 31337 (a local Hardhat chain). */
  faultInjection: z
    .strictObject({
      /** The GPU node returns wrong outputs (the enclave must catch it). */
      corruptOutputs: z.boolean().default(false),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    })
    .prefault({}),
});

export type RelayerConfigInput = z.input<typeof relayerConfigSchema>;
export type RelayerConfig = z.output<typeof relayerConfigSchema>;

/** Environment variables that override one config field each (value parsed as the field's type). */
export const ENV_OVERRIDES: Record<
  string,
  { path: string[]; type: "string" | "number" | "boolean" }
> = {
  OPG_RELAYER_RPC_URL: { path: ["chain", "rpcUrl"], type: "string" },
  OPG_RELAYER_CHAIN_ID: { path: ["chain", "chainId"], type: "number" },
  OPG_RELAYER_LEDGER: { path: ["chain", "ledger"], type: "string" },
  OPG_RELAYER_NODE: { path: ["node", "address"], type: "string" },
  OPG_RELAYER_ENCLAVE_URL: { path: ["enclave", "url"], type: "string" },
  OPG_RELAYER_SAMPLE_RATE: { path: ["enclave", "sampleRate"], type: "number" },
  OPG_RELAYER_HOST: { path: ["api", "host"], type: "string" },
  OPG_RELAYER_PORT: { path: ["api", "port"], type: "number" },
  OPG_RELAYER_DB: { path: ["store", "path"], type: "string" },
  OPG_RELAYER_MODELS: { path: ["models", "dir"], type: "string" },
  OPG_RELAYER_LOG_LEVEL: { path: ["log", "level"], type: "string" },
};

function problems(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
}

/** Validates a config object (file contents with overrides applied); throws InputError listing every problem. */
export function parseRelayerConfig(input: unknown, source = "config"): RelayerConfig {
  const result = relayerConfigSchema.safeParse(input);
  if (!result.success) {
    throw new InputError(`invalid relayer config (${source})`, {
      details: { problems: problems(result.error) },
      hint: "see docs/relayer.md, section 'Configuration'",
    });
  }
  const config = result.data;
  if (config.faultInjection.corruptOutputs && config.chain.chainId !== 31337) {
    throw new InputError("faultInjection.corruptOutputs is only allowed on a local chain (31337)", {
      details: { chainId: config.chain.chainId },
    });
  }
  return config;
}

/** Applies OPG_RELAYER_* overrides to a parsed-JSON object (a copy). */
export function applyEnvOverrides(
  json: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const copy = structuredClone(json);
  for (const [name, { path, type }] of Object.entries(ENV_OVERRIDES)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    let value: unknown = raw;
    if (type === "number") {
      value = Number(raw);
      if (!Number.isFinite(value))
        throw new InputError(`${name} must be a number`, { details: { [name]: raw } });
    } else if (type === "boolean") {
      if (raw !== "true" && raw !== "false")
        throw new InputError(`${name} must be true or false`, { details: { [name]: raw } });
      value = raw === "true";
    }
    let node = copy;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== "object" || next === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return copy;
}

/** Reads `file` (JSON), applies the environment's overrides, validates. */
export function loadRelayerConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): RelayerConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new InputError(`cannot read relayer config ${file}`, { details: { file }, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InputError(`relayer config ${file} is not valid JSON`, { details: { file }, cause });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InputError(`relayer config ${file} must be a JSON object`, { details: { file } });
  }
  return parseRelayerConfig(applyEnvOverrides(json as Record<string, unknown>, env), file);
}

/** The service's keys. Held as Wallets only; `toJSON` hides them from any log or dump. */
export interface RelayerSecrets {
  nodeSigner: Wallet;
  txSigner: Wallet;
}

function walletFrom(name: string, env: NodeJS.ProcessEnv): Wallet {
  const raw = env[name];
  if (raw === undefined || raw === "") {
    throw new InputError(`${name} is not set`, {
      hint: `export ${name}=0x<64 hex digits> (or put it in the Hardhat keystore and export it from there)`,
    });
  }
  const key = raw.startsWith("0x") ? raw : `0x${raw}`;
  if (!isHexString(key, 32)) {
    // Never echo the value: it is (almost) a private key.
    throw new InputError(`${name} must be a 32-byte hex private key`, {
      details: { length: raw.length },
    });
  }
  return new Wallet(key);
}

/** Keys from the environment (OPG_NODE_SIGNER_KEY, OPG_RELAYER_TX_KEY); their values never appear in errors. */
export function loadSecrets(env: NodeJS.ProcessEnv = process.env): RelayerSecrets {
  return {
    nodeSigner: walletFrom("OPG_NODE_SIGNER_KEY", env),
    txSigner: walletFrom("OPG_RELAYER_TX_KEY", env),
  };
}

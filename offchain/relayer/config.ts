/**
 * The relayer's configuration: one JSON file validated with zod, then environment overrides
 * (OPG_RELAYER_*). Keys never live in the file: the GPU node's signing key and the transaction key
 * come from the environment (OPG_NODE_SIGNER_KEY, OPG_RELAYER_TX_KEY) or from the Hardhat keystore
 * (`keys.source: "keystore"`), see `loadSecrets`, and are never logged.
 */
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";

import { Wallet, isAddress } from "ethers";
import { z } from "zod";

import { checkClockMode } from "../chain/clock.js";
import { InputError } from "../common/errors.js";
import {
  KEYSTORE_KEY_NAME,
  KeystoreError,
  defaultKeystorePath,
  unlockKeystore,
} from "../common/hardhat-keystore.js";
import { parsePrivateKey } from "../common/private-key.js";
import { engineConfigSchema } from "../inference/provider.js";

const address = z.string().refine((v) => isAddress(v), "expected an address (0x + 40 hex digits)");
const port = z.number().int().min(0).max(65_535);
const keyName = z
  .string()
  .regex(KEYSTORE_KEY_NAME, "expected a name of letters, digits and _ (not starting with a digit)");

/** The trusted root for Nitro attestations meaning the AWS Nitro Enclaves root G1. */
export const AWS_NITRO_ROOT = "aws-nitro";

export const relayerConfigSchema = z.strictObject({
  chain: z.strictObject({
    rpcUrl: z.url(),
    chainId: z.number().int().positive(),
    ledger: address,
    /**
     * TeeRegistry the enclave must be active in. Optional: it is read from the ledger
     * (TEE_REGISTRY); when given, the ledger's must be this one.
     */
    teeRegistry: address.optional(),
    /** Block the ledger was deployed at: where event scans start. */
    deployBlock: z.number().int().min(0).default(0),
    pollIntervalMs: z.number().int().min(10).max(60_000).default(500),
    /**
     * Where receipt timestamps come from: "system" (the machine's clock), or "chain" (follows a local
     * chain's block time, for chains moved forward by hand; refused elsewhere). Default: "chain" on
     * local chains (31337, 1337), else "system".
     */
    clock: z.enum(["system", "chain"]).optional(),
  }),
  /** The GPU node id (NodeStaking) this relayer signs receipts for. */
  node: z.strictObject({ address }),
  enclave: z.strictObject({
    url: z.url(),
    /** How often the relayer asks whether the enclave has a new key (it then checks and uses it). */
    recheckMs: z.number().int().min(100).max(600_000).default(5_000),
    /** How the enclave's attestation is checked at start-up (offchain/relayer/enclave-check.ts). */
    attestation: z
      .strictObject({
        /**
         * Trusted root certificate: "aws-nitro" (the AWS Nitro Enclaves root G1, for real enclaves)
         * or a PEM file (a development enclave's root: `GET /info` -> devRootPem).
         */
        root: z.string().min(1).default(AWS_NITRO_ROOT),
        /** Largest accepted age of the document the enclave answers with. */
        maxAgeSeconds: z.number().int().min(1).max(3_600).default(60),
        /**
         * Accept an enclave started in debug mode (PCRs all zero: the host can read its memory).
         * Development only; refused by default.
         */
        allowDebug: z.boolean().default(false),
      })
      .prefault({}),
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
      /**
       * Largest request body accepted (HTTP 413 above). Default: what the largest model served
       * needs (api.ts requestBodyLimit: 256 KiB at least).
       */
      bodyLimitBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024 * 1024)
        .optional(),
      /**
       * Largest binary request body (application/octet-stream; 413 above). Default: the largest
       * model's inputs in the canonical encoding (api.ts binaryRequestBodyLimit: 256 KiB at least).
       */
      binaryBodyLimitBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024 * 1024)
        .optional(),
    })
    .prefault({}),
  batch: z
    .strictObject({
      /** A batch is cut when this many receipts wait ... */
      maxSize: z.number().int().min(1).max(65_536).default(1024),
      /** ... or when the oldest has waited this long. */
      maxAgeMs: z.number().int().min(10).max(3_600_000).default(2_000),
      /**
       * Receipts waiting longer than this that the enclave no longer holds as waiting (it dropped
       * them, or a crash lost track of where they went) are sent to its log again, signed anew.
       */
      strandedAfterMs: z.number().int().min(1_000).max(86_400_000).default(240_000),
    })
    .prefault({}),
  listener: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Blocks a request's log must be buried under before it is served. */
      confirmations: z.number().int().min(0).max(1_000).default(2),
      /** Largest block range per eth_getLogs call. */
      maxBlockRange: z.number().int().min(1).max(100_000).default(2_000),
      /**
       * Seconds an earlier turn of another active GPU node at an on-chain request is left to it
       * before this node serves it (InferenceLedger.eligibleAt; docs/anchoring.md).
       */
      turnGraceSeconds: z.number().int().min(0).max(3_600).default(10),
    })
    .prefault({}),
  store: z.strictObject({ path: z.string().min(1) }),
  /**
   * Where the GPU node's signing key and the transaction key come from: environment variables, or
   * entries of the Hardhat keystore (`npx hardhat keystore set <name>`), password from
   * OPG_KEYSTORE_PASSWORD or a prompt on the terminal. The names are the variables' or the entries'.
   */
  keys: z
    .strictObject({
      source: z.enum(["env", "keystore"]).default("env"),
      /** The keystore file; default: Hardhat's (what `npx hardhat keystore path` prints). */
      keystorePath: z.string().min(1).optional(),
      nodeSignerKeyName: keyName.default("OPG_NODE_SIGNER_KEY"),
      txKeyName: keyName.default("OPG_RELAYER_TX_KEY"),
    })
    .prefault({}),
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
  OPG_RELAYER_TEE_REGISTRY: { path: ["chain", "teeRegistry"], type: "string" },
  OPG_RELAYER_NODE: { path: ["node", "address"], type: "string" },
  OPG_RELAYER_ENCLAVE_URL: { path: ["enclave", "url"], type: "string" },
  OPG_RELAYER_ENCLAVE_ROOT: { path: ["enclave", "attestation", "root"], type: "string" },
  OPG_RELAYER_HOST: { path: ["api", "host"], type: "string" },
  OPG_RELAYER_PORT: { path: ["api", "port"], type: "number" },
  OPG_RELAYER_DB: { path: ["store", "path"], type: "string" },
  OPG_RELAYER_MODELS: { path: ["models", "dir"], type: "string" },
  OPG_RELAYER_LOG_LEVEL: { path: ["log", "level"], type: "string" },
  OPG_RELAYER_KEYS_SOURCE: { path: ["keys", "source"], type: "string" },
  OPG_RELAYER_KEYSTORE: { path: ["keys", "keystorePath"], type: "string" },
};

/**
 * Keys that older relayers took and this one refuses, with why: an old config must not look
 * accepted while it no longer does what it says.
 */
const REMOVED_KEYS: Record<string, string> = {
  "enclave.sampleRate":
    "no longer a relayer setting: the enclave draws at the rate governance sets on chain (InferenceLedger.sampleRate)",
};
/** Environment overrides of removed keys, refused for the same reason. */
const REMOVED_ENV: Record<string, string> = { OPG_RELAYER_SAMPLE_RATE: "enclave.sampleRate" };

function problems(error: z.ZodError): string[] {
  return error.issues.flatMap((i) => {
    const at = i.path.join(".");
    if (i.code === "unrecognized_keys") {
      return i.keys.map((key) => {
        const path = at === "" ? key : `${at}.${key}`;
        return `${path}: ${REMOVED_KEYS[path] ?? "unknown key"}`;
      });
    }
    return [`${at || "(root)"}: ${i.message}`];
  });
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
  if (config.chain.clock !== undefined)
    checkClockMode(config.chain.clock, BigInt(config.chain.chainId));
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
  for (const [name, key] of Object.entries(REMOVED_ENV)) {
    if (env[name] !== undefined && env[name] !== "") {
      throw new InputError(`${name} is no longer read: ${key} is ${REMOVED_KEYS[key]}`, {
        details: { [name]: env[name] },
        hint: `unset ${name}`,
      });
    }
  }
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

/** The service's keys. Held as Wallets only; their values never appear in a log or an error. */
export interface RelayerSecrets {
  nodeSigner: Wallet;
  txSigner: Wallet;
}

/** The environment variable holding the keystore password. */
export const KEYSTORE_PASSWORD_ENV = "OPG_KEYSTORE_PASSWORD";

export interface SecretSources {
  env?: NodeJS.ProcessEnv;
  /**
   * Asks for the keystore password when OPG_KEYSTORE_PASSWORD is not set. Default: a hidden
   * prompt on the terminal if stdin is one, else none (the password is then an error).
   */
  askPassword?: ((question: string) => Promise<string>) | null;
}

function walletFromEnv(name: string, env: NodeJS.ProcessEnv): Wallet {
  const raw = env[name];
  if (raw === undefined || raw === "") {
    throw new InputError(`${name} is not set`, {
      hint: `export ${name}=0x<64 hex digits>, or keep it in the Hardhat keystore (keys.source "keystore")`,
    });
  }
  return new Wallet(parsePrivateKey(raw, name));
}

/** A hidden prompt on the terminal (stderr: stdout carries the service's own output). */
export async function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.on("SIGINT", () => reject(new KeystoreError("no-password", "password prompt cancelled")));
      rl.question(question, (answer) => resolve(answer));
      muted = true;
    });
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}

async function keystorePassword(file: string, sources: SecretSources): Promise<string> {
  const fromEnv = (sources.env ?? process.env)[KEYSTORE_PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const ask =
    sources.askPassword !== undefined
      ? sources.askPassword
      : process.stdin.isTTY
        ? promptHidden
        : null;
  if (ask === null) {
    throw new KeystoreError("no-password", `the keystore ${file} needs its password`, {
      details: { path: file },
      hint: `set ${KEYSTORE_PASSWORD_ENV}, or start it in a terminal to be asked for it`,
    });
  }
  return ask(`Password for the Hardhat keystore ${file}: `);
}

/**
 * Keys by name, from the environment (`source: "env"`) or the Hardhat keystore: the one way every
 * service reads its keys. Errors name the variable or entry and the file, never a key's value or
 * the password.
 */
export async function loadWallets(
  keys: { source: "env" | "keystore"; keystorePath?: string | undefined },
  names: readonly string[],
  sources: SecretSources = {},
): Promise<Wallet[]> {
  const env = sources.env ?? process.env;
  if (keys.source === "env") return names.map((name) => walletFromEnv(name, env));
  const file = keys.keystorePath ?? defaultKeystorePath(env);
  const keystore = await unlockKeystore(file, await keystorePassword(file, sources));
  try {
    return names.map((name) => new Wallet(keystore.privateKey(name)));
  } finally {
    keystore.close();
  }
}

/** The relayer's two keys (see `loadWallets`). */
export async function loadSecrets(
  keys: RelayerConfig["keys"],
  sources: SecretSources = {},
): Promise<RelayerSecrets> {
  const [nodeSigner, txSigner] = await loadWallets(
    keys,
    [keys.nodeSignerKeyName, keys.txKeyName],
    sources,
  );
  return { nodeSigner: nodeSigner!, txSigner: txSigner! };
}

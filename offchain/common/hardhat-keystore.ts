/**
 * Reads secrets from a Hardhat 3 keystore file (`npx hardhat keystore set NAME`), so a service
 * can take its keys from there instead of the environment. The plugin exports no API for this,
 * so the file format ("hardhat-v3-keystore-1", @nomicfoundation/hardhat-keystore) is read here:
 *
 *   masterKey     = scrypt(NFKC(password), salt, N, r, p, 32 bytes)
 *   hmacKey       = AES-GCM-SIV(masterKey, iv).decrypt(hmacKey.cypherText)          (hex text)
 *   hmac          = HMAC-SHA-256(hmacKey, JSON of the file without "hmac", keys sorted)
 *   dataKey       = AES-GCM-SIV(masterKey, iv).decrypt(dataEncryptionKey.cypherText) (hex text)
 *   secrets[NAME] = AES-GCM-SIV(dataKey, iv).decrypt(secrets[NAME].cypherText)      (UTF-8)
 *
 * A wrong password fails the first decryption (the AEAD tag), a modified file fails the HMAC.
 * Every failure is a KeystoreError naming the problem and the file, never a secret or the password.
 */
import { createHmac, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { z } from "zod";

import { AesGcmSivAuthError, aesGcmSivDecrypt } from "./aes-gcm-siv.js";
import { InputError, type BaseErrorOptions } from "./errors.js";
import { parsePrivateKey } from "./private-key.js";

const scrypt = promisify(scryptCallback) as (
  password: string,
  salt: Uint8Array,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

export const KEYSTORE_VERSION = "hardhat-v3-keystore-1";

/** Names `npx hardhat keystore set` accepts. */
export const KEYSTORE_KEY_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type KeystoreProblem =
  | "missing-file"
  | "format"
  | "no-password"
  | "wrong-password"
  | "integrity"
  | "missing-key"
  | "malformed-key";

/** A keystore cannot give what was asked; `problem` says why. Never carries a secret or password. */
export class KeystoreError extends InputError {
  override name = "KeystoreError";
  constructor(
    readonly problem: KeystoreProblem,
    message: string,
    options: BaseErrorOptions = {},
  ) {
    super(message, { ...options, details: { problem, ...options.details } });
  }
}

const hexString = z.string().regex(/^([0-9a-f]{2})*$/, "expected lowercase hex without 0x");
const encrypted = z.object({ iv: hexString.length(24), cypherText: hexString.min(32) });

const keystoreSchema = z.object({
  version: z.literal(KEYSTORE_VERSION),
  crypto: z.object({
    masterKeyDerivation: z.object({
      algorithm: z.literal("scrypt"),
      // Powers of two up to 2^20 (1 GiB at r = 8): more would be a denial of service, not security.
      paramN: z
        .number()
        .int()
        .min(2)
        .max(2 ** 20)
        .refine((n) => (n & (n - 1)) === 0, "expected a power of two"),
      paramR: z.number().int().min(1).max(32),
      paramP: z.number().int().min(1).max(16),
      unicodeNormalizationForm: z.literal("NFKC"),
      keyLength: z.literal(256),
      salt: hexString.min(32),
    }),
    encryption: z.object({ algorithm: z.literal("AES-GCM-SIV"), keyLength: z.literal(256) }),
    hmac: z.object({ algorithm: z.literal("HMAC-SHA-256"), keyLength: z.literal(256) }),
  }),
  dataEncryptionKey: encrypted,
  hmacKey: encrypted,
  hmac: hexString.length(64),
  secrets: z.record(z.string(), encrypted),
});

type KeystoreFile = z.infer<typeof keystoreSchema>;

/**
 * Where `npx hardhat keystore set` writes (what `npx hardhat keystore path` prints): Hardhat's
 * global config folder (env-paths "hardhat-nodejs"), file keystore.json.
 */
export function defaultKeystorePath(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const home = env.HOME !== undefined && env.HOME !== "" ? env.HOME : homedir();
  const name = "hardhat-nodejs";
  if (platform === "darwin")
    return path.join(home, "Library", "Preferences", name, "keystore.json");
  if (platform === "win32") {
    const appData = env.APPDATA ?? path.join(home, "AppData", "Roaming");
    return path.join(appData, name, "Config", "keystore.json");
  }
  const config =
    env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== ""
      ? env.XDG_CONFIG_HOME
      : path.join(home, ".config");
  return path.join(config, name, "keystore.json");
}

/** JSON with every object's keys sorted, `undefined` members dropped: what Hardhat's HMAC covers. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, (v as Record<string, unknown>)[k]]),
    );
  });
}

function decrypt(key: Uint8Array, data: { iv: string; cypherText: string }): Buffer {
  return aesGcmSivDecrypt(key, Buffer.from(data.iv, "hex"), Buffer.from(data.cypherText, "hex"));
}

/** An unlocked keystore: the names it holds, and each secret on request. */
export class UnlockedKeystore {
  readonly #dataKey: Buffer;
  readonly #file: KeystoreFile;

  constructor(
    readonly path: string,
    file: KeystoreFile,
    dataKey: Buffer,
  ) {
    this.#file = file;
    this.#dataKey = dataKey;
  }

  get names(): string[] {
    return Object.keys(this.#file.secrets).sort();
  }

  /** The secret stored under `name` (UTF-8 text, as `keystore set` stored it). */
  get(name: string): string {
    const entry = Object.hasOwn(this.#file.secrets, name) ? this.#file.secrets[name] : undefined;
    if (entry === undefined) {
      throw new KeystoreError("missing-key", `key ${name} is not in the keystore ${this.path}`, {
        details: { path: this.path, key: name, keys: this.names },
        hint: `npx hardhat keystore set ${name}`,
      });
    }
    try {
      return decrypt(this.#dataKey, entry).toString("utf8");
    } catch (cause) {
      // The HMAC covers every entry, so this is a damaged file, not a wrong password.
      throw new KeystoreError(
        "integrity",
        `key ${name} in the keystore ${this.path} is corrupted`,
        {
          details: { path: this.path, key: name },
          cause: cause instanceof AesGcmSivAuthError ? undefined : cause,
        },
      );
    }
  }

  /**
   * The secret stored under `name`, checked to be a secp256k1 private key (parsePrivateKey);
   * KeystoreError "malformed-key" naming the entry and the file, by the value's length only.
   */
  privateKey(name: string): string {
    const raw = this.get(name);
    try {
      return parsePrivateKey(raw, `${name} in the keystore ${this.path}`);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      throw new KeystoreError("malformed-key", error.message, {
        details: { path: this.path, key: name, length: raw.length },
      });
    }
  }

  /** Forgets the data key (the object is useless afterwards). */
  close(): void {
    this.#dataKey.fill(0);
  }
}

/** Reads and parses the keystore file; KeystoreError "missing-file" or "format". */
export async function readKeystoreFile(
  file: string,
): Promise<{ parsed: KeystoreFile; raw: object }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === "ENOENT";
    throw new KeystoreError(
      "missing-file",
      missing ? `no Hardhat keystore at ${file}` : `cannot read the Hardhat keystore ${file}`,
      {
        details: { path: file },
        hint: "create it with `npx hardhat keystore set <NAME>`, or set keys.keystorePath",
        cause,
      },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new KeystoreError("format", `the keystore ${file} is not JSON`, {
      details: { path: file },
      cause,
    });
  }
  const result = keystoreSchema.safeParse(raw);
  if (!result.success) {
    throw new KeystoreError("format", `${file} is not a Hardhat keystore (${KEYSTORE_VERSION})`, {
      details: {
        path: file,
        problems: result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
      },
    });
  }
  return { parsed: result.data, raw: raw as object };
}

/**
 * Opens the keystore at `file` with `password`: derives the master key, checks the password (AEAD
 * tag) and the file's HMAC, and keeps only the data key.
 */
export async function unlockKeystore(file: string, password: string): Promise<UnlockedKeystore> {
  const { parsed, raw } = await readKeystoreFile(file);
  const kdf = parsed.crypto.masterKeyDerivation;
  const masterKey = await scrypt(
    password.normalize("NFKC"),
    Buffer.from(kdf.salt, "hex"),
    kdf.keyLength / 8,
    {
      N: kdf.paramN,
      r: kdf.paramR,
      p: kdf.paramP,
      maxmem: 128 * kdf.paramN * kdf.paramR * kdf.paramP + 32 * 1024 * 1024,
    },
  );
  try {
    let hmacKey: Buffer;
    try {
      hmacKey = Buffer.from(decrypt(masterKey, parsed.hmacKey).toString("utf8"), "hex");
    } catch (cause) {
      if (!(cause instanceof AesGcmSivAuthError)) throw cause;
      throw new KeystoreError("wrong-password", `wrong password for the keystore ${file}`, {
        details: { path: file },
        hint: "the password `npx hardhat keystore set` asked for when the keystore was created",
      });
    }
    const withoutHmac = { ...raw, hmac: undefined };
    const mac = createHmac("sha256", hmacKey).update(sortedJson(withoutHmac), "utf8").digest();
    hmacKey.fill(0);
    if (!timingSafeEqual(mac, Buffer.from(parsed.hmac, "hex"))) {
      throw new KeystoreError(
        "integrity",
        `the keystore ${file} fails its integrity check (modified or corrupted)`,
        { details: { path: file } },
      );
    }
    let dataKey: Buffer;
    try {
      dataKey = Buffer.from(decrypt(masterKey, parsed.dataEncryptionKey).toString("utf8"), "hex");
    } catch {
      throw new KeystoreError("integrity", `the keystore ${file} has a corrupted data key`, {
        details: { path: file },
      });
    }
    return new UnlockedKeystore(file, parsed, dataKey);
  } finally {
    masterKey.fill(0);
  }
}

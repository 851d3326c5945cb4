/**
 * The sender of a CLI command's transactions: an account unlocked on the node (`--from`), else a
 * private key from an environment variable (`--key-env`, default OPG_PRIVATE_KEY).
 */
import type { Command } from "commander";
import { Wallet, isAddress } from "ethers";
import type { JsonRpcProvider, Signer } from "ethers";

import { InputError } from "../common/errors.js";
import { parsePrivateKey } from "../common/private-key.js";

export interface SignerOptions {
  from?: string;
  keyEnv: string;
}

export function withSigner(cmd: Command): Command {
  return cmd
    .option("--from <address>", "send from this account unlocked on the node (eth_sendTransaction)")
    .option(
      "--key-env <name>",
      "else: environment variable holding the sender's private key",
      "OPG_PRIVATE_KEY",
    );
}

export async function signerFor(
  provider: JsonRpcProvider,
  options: SignerOptions,
): Promise<Signer> {
  if (options.from !== undefined) {
    if (!isAddress(options.from)) {
      throw new InputError("--from is not an address", { details: { from: options.from } });
    }
    return provider.getSigner(options.from);
  }
  const key = process.env[options.keyEnv];
  if (key === undefined || key === "") {
    throw new InputError("no sender: pass --from <address> or set the private key variable", {
      details: { keyEnv: options.keyEnv },
    });
  }
  return new Wallet(parsePrivateKey(key, options.keyEnv), provider);
}

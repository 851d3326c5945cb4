/** Test fixtures on a JSON-RPC dev chain (Hardhat node): funded throwaway keys and an OPG token. */
import { readFile } from "node:fs/promises";
import path from "node:path";

import { Contract, ContractFactory, JsonRpcProvider, Network, Wallet, toBeHex } from "ethers";

/** A provider with a fixed network (no detection round-trip that a fault proxy could stall). */
export function devProvider(url: string, chainId = 31337): JsonRpcProvider {
  return new JsonRpcProvider(url, Network.from(chainId), {
    staticNetwork: Network.from(chainId),
    pollingInterval: 100,
  });
}

/** A fresh random key with 100 ETH, set through `hardhat_setBalance` (no nonce spent anywhere). */
export async function fundedWallet(provider: JsonRpcProvider): Promise<Wallet> {
  const wallet = Wallet.createRandom().connect(provider);
  await provider.send("hardhat_setBalance", [wallet.address, toBeHex(10n ** 20n)]);
  return new Wallet(wallet.privateKey, provider);
}

/** Deploys OPGToken (from the build artifacts) from a throwaway deployer, minting `supply` to `holder`. */
export async function deployToken(
  provider: JsonRpcProvider,
  holder: string,
  supply = 10n ** 24n,
): Promise<Contract> {
  const artifactPath = path.join(
    process.cwd(),
    "artifacts",
    "contracts",
    "token",
    "OPGToken.sol",
    "OPGToken.json",
  );
  const artifact = JSON.parse(await readFile(artifactPath, "utf8")) as {
    abi: unknown[];
    bytecode: string;
  };
  const deployer = await fundedWallet(provider);
  const factory = new ContractFactory(artifact.abi as never, artifact.bytecode, deployer);
  const token = await factory.deploy(holder, supply);
  await token.waitForDeployment();
  return new Contract(await token.getAddress(), artifact.abi as never, provider);
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function until<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

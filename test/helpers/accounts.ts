/**
 * Accounts named by the role they play in a test, not by their index in a node's account list: a fresh
 * key per role, funded with ETH by the first account. The same test then runs on a hardhat node (20
 * accounts) and on anvil (10), and no role is played by a plan beneficiary by accident.
 */
import type { Provider, Signer } from "ethers";
import { NonceManager, Wallet } from "ethers";

/** A role's key, connected to the chain; `address` is known without a round trip. */
export type RoleAccount = Wallet;

export async function roleAccounts<const R extends readonly string[]>(
  funder: Signer,
  provider: Provider,
  roles: R,
  ethEach: bigint = 10n ** 20n,
): Promise<Record<R[number], RoleAccount>> {
  const accounts = {} as Record<R[number], RoleAccount>;
  // One nonce sequence for the funding transfers, sent together and then awaited.
  const sender = new NonceManager(funder);
  const sent = [];
  for (const role of roles as readonly R[number][]) {
    const account = Wallet.createRandom(provider) as unknown as Wallet;
    accounts[role] = account;
    sent.push(await sender.sendTransaction({ to: account.address, value: ethEach }));
  }
  await Promise.all(sent.map((tx) => tx.wait()));
  return accounts;
}

/**
 * Rewards claim gas: ContributorRewards.claim against a 100,000-leaf tree built with the native
 * engine, next to the Uniswap MerkleDistributor's claim on a tree of the same size. Both pay the same
 * token (OPGToken) from a funded distributor to an account with zero balance and untouched claim
 * storage (Uniswap: a fresh bitmap word; ours: a fresh `claimed` slot), with proofs of the same
 * length (17 nodes), sent by a third party on the account's behalf. Each measured claim is the first
 * on its contract.
 *
 * Ours is funded as in production: a linear rewards-pool schedule in the VestingVault whose
 * beneficiary is rotated to ContributorRewards and bound there; once it has vested, proposing the
 * root pulls the release in. Uniswap's distributor is funded by a plain transfer.
 */
import { createRequire } from "node:module";

import { solidityPackedKeccak256 } from "ethers";

import { buildTree, buildTreeFromHashes } from "../../../native/index.js";
import { DAY, linear } from "../../../test/helpers/vesting.js";
import type { BenchContext, GasRow } from "./types.js";
import { gasOf } from "./types.js";

const LEAVES = 100_000;

const require = createRequire(import.meta.url);
const uniswap = require("@uniswap/merkle-distributor/build/MerkleDistributor.json") as {
  abi: unknown[];
  bytecode: string;
};

export async function measure(ctx: BenchContext): Promise<{ rows: GasRow[] }> {
  const { ethers, networkHelpers } = await ctx.connect();
  const [deployer] = await ethers.getSigners();
  const amountOf = (i: number) => 10n ** 18n + BigInt(i);
  // Fresh addresses with no token balance; claims are sent by the deployer on their behalf.
  const accounts = Array.from({ length: LEAVES }, (_, i) =>
    ethers.getAddress("0x" + (0xc0de0000 + i).toString(16).padStart(40, "0")),
  );
  const total = accounts.reduce((sum, _a, i) => sum + amountOf(i), 0n);

  const token = await ethers.deployContract("OPGToken", [deployer!.address, total * 2n]);
  const vault = await ethers.deployContract("VestingVault", [
    await token.getAddress(),
    deployer!.address,
  ]);

  // Ours: OpenZeppelin standard leaves (account, cumulativeAmount).
  const ours = buildTree(
    accounts.map((a, i) => [a, amountOf(i)]),
    ["address", "uint256"],
  );
  const rewards = await ethers.deployContract("ContributorRewards", [
    await token.getAddress(),
    deployer!.address,
    deployer!.address,
    deployer!.address,
    0n,
  ]);
  // The rewards pool: a one-year linear schedule of exactly `total`, rotated to the distributor and
  // bound, fully vested before the root is proposed (the proposal pulls the release in).
  const start = BigInt(await networkHelpers.time.latest()) + DAY;
  const end = start + 365n * DAY;
  await token.approve(await vault.getAddress(), total);
  await vault.createSchedule(linear(deployer!.address, { total, start, end }));
  await vault.transferBeneficiary(0n, await rewards.getAddress());
  await rewards.bindSchedule(await vault.getAddress(), 0n);
  await networkHelpers.time.increaseTo(end);
  await rewards.proposeRoot(ours.root, 1n, total, ethers.ZeroHash, "ipfs://bench");
  await rewards.acceptRoot();
  if ((await token.balanceOf(await rewards.getAddress())) !== total)
    throw new Error("the proposal did not pull the rewards pool in");

  // Uniswap: keccak256(abi.encodePacked(index, account, amount)), sorted-pair tree.
  const hashes = accounts.map((a, i) =>
    solidityPackedKeccak256(["uint256", "address", "uint256"], [i, a, amountOf(i)]),
  );
  const theirs = buildTreeFromHashes(hashes);
  const factory = new ethers.ContractFactory(uniswap.abi as never, uniswap.bytecode, deployer);
  const distributor = (await factory.deploy(await token.getAddress(), theirs.root)) as unknown as {
    getAddress(): Promise<string>;
    claim(index: number, account: string, amount: bigint, proof: string[]): Promise<never>;
  };
  await token.transfer(await distributor.getAddress(), total);

  // Compare proofs of the same length (17 nodes; about 69% of a 100k-leaf tree's leaves are that deep).
  const pick = (from: number) => {
    for (let i = from; i < LEAVES; i++) {
      if (ours.proof(i).length === 17 && theirs.proof(i).length === 17) return i;
    }
    throw new Error("no leaf with 17-node proofs on both sides");
  };
  const oursIndex = pick(0);
  const theirIndex = pick(oursIndex + 1);

  // Each side pays a different account, so both recipients go from a zero to a non-zero balance.
  const oursGas = await gasOf(
    rewards.claim(accounts[oursIndex]!, amountOf(oursIndex), ours.proof(oursIndex)),
  );
  const peerGas = await gasOf(
    distributor.claim(
      theirIndex,
      accounts[theirIndex]!,
      amountOf(theirIndex),
      theirs.proof(theirIndex),
    ),
  );
  for (const i of [oursIndex, theirIndex]) {
    if ((await token.balanceOf(accounts[i]!)) !== amountOf(i))
      throw new Error("a claim did not pay");
  }
  await networkHelpers.mine();

  return {
    rows: [
      {
        operation:
          "rewards: first claim of an account, 100k-leaf tree, fresh claim storage, 17-node proof",
        ours: oursGas,
        peer: "Uniswap MerkleDistributor.claim",
        peerGas,
      },
    ],
  };
}

/**
 * Vesting gas rows (issue 2): VestingVault against Sablier Lockup (bytecode from @sablier/lockup) and
 * OpenZeppelin's VestingWallet / VestingWalletCliff (compiled from @openzeppelin/contracts), all
 * deployed on one fresh chain and all moving the same OPGToken.
 *
 * Like with like:
 *  - the same amounts, times (from a fixed start, so calldata gas is the same on every run) and token
 *    on every side; every measured schedule pays a beneficiary
 *    address that has never held the token (the first transfer to an address costs a zero-to-nonzero
 *    balance write on every side);
 *  - the vault and the Sablier lockup each hold one schedule before the measured ones, so neither
 *    pays for its own first-ever counter or token-balance write (OZ deploys a new wallet per schedule:
 *    that first write is part of what creating a schedule costs there);
 *  - both pull the deposit with `transferFrom` under an unlimited allowance (no allowance write);
 *  - every release is a first release, called by the same third party, at the same point of the
 *    schedules (400 days in: after the 1-year cliff, 4 of 12 quarterly tranches unlocked).
 */
import type { BaseContract, Contract, ContractTransactionResponse } from "ethers";
import { MaxUint256, dataSlice, getAddress, id } from "ethers";

import type { ScheduleParams } from "../../../offchain/vesting/plan.js";
import { DAY, OPG, linear, tranched } from "../../../test/helpers/vesting.js";
import { deploySablier, send } from "../peers/sablier.js";
import type { BenchContext, GasCheck, GasRow } from "./types.js";
import { gasOf } from "./types.js";

const YEAR = 365n * DAY;
/** Divisible by 10 (cliff amount) and by 12 (tranches): every schedule holds exactly this. */
const TOTAL = 1_200_000n * OPG;
const CLIFF_AMOUNT = TOTAL / 10n;
const TRANCHES = 12;
const QUARTER = 91n * DAY;
const BATCH = 10;
/** Every schedule starts then (2033-05-18T03:33:20Z), on every side. */
const START = 2_000_000_000n;
/** When every release is measured, counted from the schedules' common start. */
const RELEASE_AT = 400n * DAY;

/** A distinct address that has never held anything, derived from a label (deterministic calldata). */
function freshAddress(label: string): string {
  return getAddress(dataSlice(id(`opg-bench/vesting/${label}`), 12));
}

/** Sablier's common create parameters for a schedule of ours. */
function sablierCreate(p: ScheduleParams, sender: string, token: string, end: bigint) {
  return {
    sender,
    recipient: p.beneficiary,
    depositAmount: p.total,
    token,
    cancelable: p.revocable,
    // Our beneficiary can move its schedule (transferBeneficiary): the Sablier equivalent is a
    // transferable stream NFT.
    transferable: true,
    timestamps: { start: p.start, end },
    shape: "",
  };
}

/** Deploys an OZ wallet, then funds it with a plain transfer: how a schedule is created with OZ. */
async function deployAndFund<T extends BaseContract>(
  deploy: Promise<T>,
  fund: (wallet: string) => Promise<ContractTransactionResponse>,
): Promise<{ wallet: T; gas: number }> {
  const wallet = await deploy;
  const deployment = wallet.deploymentTransaction();
  if (deployment === null) throw new Error("the peer wallet has no deployment transaction");
  const gas =
    (await gasOf(Promise.resolve(deployment))) + (await gasOf(fund(await wallet.getAddress())));
  return { wallet, gas };
}

export async function measure(ctx: BenchContext): Promise<{ rows: GasRow[]; checks: GasCheck[] }> {
  const { ethers, networkHelpers } = await ctx.connect();
  const { time } = networkHelpers;
  const [funder, keeper] = await ethers.getSigners();
  if (funder === undefined || keeper === undefined) throw new Error("need two signers");

  // One token for everyone; the funder creates every schedule on every side.
  const token = await ethers.deployContract("OPGToken", [funder.address, 1_000_000_000n * OPG]);
  const tokenAddress = await token.getAddress();
  const vault = await ethers.deployContract("VestingVault", [tokenAddress, funder.address]);
  const vaultAddress = await vault.getAddress();
  const sablier = await deploySablier(funder);
  const lockup = sablier.lockup;
  const lockupAddress = await lockup.getAddress();
  const batchAddress = await sablier.batch.getAddress();
  await (await token.approve(vaultAddress, MaxUint256)).wait();
  await (await token.approve(lockupAddress, MaxUint256)).wait();
  await (await token.approve(batchAddress, MaxUint256)).wait();

  // A fixed start: calldata costs depend on the bytes of every timestamp, so schedules anchored on
  // the wall clock would cost a few gas more or less from one day to the next.
  if (BigInt(await time.latest()) >= START - DAY) {
    throw new Error(`the chain's clock is past ${START - DAY}: move START in 10-vesting.ts`);
  }
  await time.increaseTo(START - DAY);
  const start = START;
  const cliff = start + YEAR;
  const end = start + 4n * YEAR;
  const quarters = Array.from({ length: TRANCHES }, (_, i) => ({
    timestamp: start + BigInt(i + 1) * QUARTER,
    amount: TOTAL / BigInt(TRANCHES),
  }));
  const lastTranche = quarters[TRANCHES - 1]!.timestamp;

  const linearCliff = (who: string): ScheduleParams =>
    linear(who, { total: TOTAL, start, cliff, cliffAmount: CLIFF_AMOUNT, end });
  const linearPlain = (who: string): ScheduleParams => linear(who, { total: TOTAL, start, end });
  const tranche12 = (who: string): ScheduleParams => tranched(who, start, quarters);

  // Sablier's calls, from its artifacts' ABI (not compiled here, so not in TypeChain).
  const createLL = send(lockup, "createWithTimestampsLL");
  const createLT = send(lockup, "createWithTimestampsLT");
  const batchLL = send(sablier.batch, "createWithTimestampsLL");
  const withdrawAsKeeper = send(lockup.connect(keeper) as Contract, "withdrawMax");
  const nextStreamId = lockup.getFunction("nextStreamId");

  const sablierLL = (p: ScheduleParams) =>
    createLL(
      sablierCreate(p, funder.address, tokenAddress, p.end),
      { start: 0n, cliff: p.cliffAmount },
      0n, // granularity: 0 is Sablier's sentinel for one second, i.e. continuous
      p.cliff,
    );
  const sablierLT = (p: ScheduleParams) =>
    createLT(
      sablierCreate(p, funder.address, tokenAddress, lastTranche),
      p.tranches.map((t) => ({ amount: t.amount, timestamp: t.timestamp })),
    );
  /** Creates a stream and returns its id (read before sending: ids are sequential). */
  const sablierStream = async (create: () => Promise<ContractTransactionResponse>) => {
    const streamId = (await nextStreamId()) as bigint;
    const gas = await gasOf(create());
    return { streamId, gas };
  };
  const ourSchedule = async (p: ScheduleParams) => {
    const scheduleId = await vault.scheduleCount();
    const gas = await gasOf(vault.createSchedule(p));
    return { scheduleId, gas };
  };

  // Warm-up: one schedule each, so that counters and the contracts' token balances are non-zero.
  await ourSchedule(linearCliff(freshAddress("warm/ours")));
  await sablierStream(() => sablierLL(linearCliff(freshAddress("warm/sablier"))));

  // --- create ---
  const oursCliff = await ourSchedule(linearCliff(freshAddress("cliff/ours")));
  const sabCliff = await sablierStream(() => sablierLL(linearCliff(freshAddress("cliff/sablier"))));
  const ozCliffBeneficiary = freshAddress("cliff/oz");
  const ozCliff = await deployAndFund(
    ethers.deployContract("PeerVestingWalletCliff", [
      ozCliffBeneficiary,
      start,
      end - start,
      cliff - start,
    ]),
    (wallet) => token.transfer(wallet, TOTAL),
  );

  const oursPlain = await ourSchedule(linearPlain(freshAddress("plain/ours")));
  const sabPlain = await sablierStream(() => sablierLL(linearPlain(freshAddress("plain/sablier"))));
  const ozPlainBeneficiary = freshAddress("plain/oz");
  const ozPlain = await deployAndFund(
    ethers.deployContract("PeerVestingWallet", [ozPlainBeneficiary, start, end - start]),
    (wallet) => token.transfer(wallet, TOTAL),
  );

  const oursTr = await ourSchedule(tranche12(freshAddress("tranche/ours")));
  const sabTr = await sablierStream(() => sablierLT(tranche12(freshAddress("tranche/sablier"))));

  // --- batch of 10 linear+cliff schedules, per schedule ---
  const oursBatch = Array.from({ length: BATCH }, (_, i) =>
    linearCliff(freshAddress(`batch/ours/${i}`)),
  );
  const oursBatchGas = await gasOf(vault.createSchedules(oursBatch));
  const sabBatch = Array.from({ length: BATCH }, (_, i) => {
    const p = linearCliff(freshAddress(`batch/sablier/${i}`));
    return {
      sender: funder.address,
      recipient: p.beneficiary,
      depositAmount: p.total,
      cancelable: p.revocable,
      transferable: true,
      timestamps: { start: p.start, end: p.end },
      cliffTime: p.cliff,
      unlockAmounts: { start: 0n, cliff: p.cliffAmount },
      granularity: 0n,
      shape: "",
    };
  });
  const sabBatchGas = await gasOf(batchLL(lockupAddress, tokenAddress, sabBatch));

  // --- release: first release of each, 400 days in, by the same third party ---
  await time.increaseTo(start + RELEASE_AT);
  const asKeeper = vault.connect(keeper);
  /**
   * Sends a release, checks what it paid and returns its gas. Where the peer's formula is ours
   * (`sameAs`: no cliff, or tranches) it must pay exactly what our schedule vests at that block;
   * otherwise (Sablier and OZ treat a cliff differently) it must pay something.
   */
  const release = async (
    what: string,
    beneficiary: string,
    tx: Promise<ContractTransactionResponse>,
    sameAs?: bigint,
  ): Promise<number> => {
    const receipt = await (await tx).wait();
    if (receipt === null) throw new Error(`${what}: not mined`);
    const got = await token.balanceOf(beneficiary);
    if (got === 0n) throw new Error(`${what} paid nothing`);
    if (sameAs !== undefined) {
      const block = await receipt.getBlock();
      const expected = await vault.vestedAt(sameAs, block.timestamp);
      if (got !== expected) {
        throw new Error(`${what} paid ${got}, our schedule ${sameAs} vests ${expected}: not alike`);
      }
    }
    return Number(receipt.gasUsed);
  };
  const ozCliffAsKeeper = ozCliff.wallet.connect(keeper);
  const ozPlainAsKeeper = ozPlain.wallet.connect(keeper);
  const [cliffS, plainS, trS] = ["cliff/sablier", "plain/sablier", "tranche/sablier"].map(
    freshAddress,
  ) as [string, string, string];

  const relOursCliff = await release(
    "VestingVault.release (linear+cliff)",
    freshAddress("cliff/ours"),
    asKeeper.release(oursCliff.scheduleId),
  );
  const relSabCliff = await release(
    "SablierLockup.withdrawMax (LL with cliff)",
    cliffS,
    withdrawAsKeeper(sabCliff.streamId, cliffS),
  );
  const relOzCliff = await release(
    "VestingWalletCliff.release",
    ozCliffBeneficiary,
    ozCliffAsKeeper["release(address)"](tokenAddress),
  );
  const relOursPlain = await release(
    "VestingVault.release (linear)",
    freshAddress("plain/ours"),
    asKeeper.release(oursPlain.scheduleId),
    oursPlain.scheduleId,
  );
  const relSabPlain = await release(
    "SablierLockup.withdrawMax (LL)",
    plainS,
    withdrawAsKeeper(sabPlain.streamId, plainS),
    oursPlain.scheduleId,
  );
  const relOzPlain = await release(
    "VestingWallet.release",
    ozPlainBeneficiary,
    ozPlainAsKeeper["release(address)"](tokenAddress),
    oursPlain.scheduleId,
  );
  const relOursTr = await release(
    "VestingVault.release (tranched)",
    freshAddress("tranche/ours"),
    asKeeper.release(oursTr.scheduleId),
    oursTr.scheduleId,
  );
  const relSabTr = await release(
    "SablierLockup.withdrawMax (LT)",
    trS,
    withdrawAsKeeper(sabTr.streamId, trS),
    oursTr.scheduleId,
  );

  const CREATE_CLIFF = "vesting: create linear+cliff schedule (1y cliff, 10% at cliff, 4y)";
  const CREATE_PLAIN = "vesting: create linear schedule, no cliff (4y)";
  const CREATE_TR = "vesting: create 12-tranche schedule";
  const CREATE_BATCH = `vesting: createSchedules batch of ${BATCH} linear+cliff (per schedule)`;
  const REL_CLIFF = "vesting: release (linear+cliff, first release)";
  const REL_PLAIN = "vesting: release (linear no cliff, first release)";
  const REL_TR = "vesting: release (12-tranche, first release, 4 unlocked)";
  const rows: GasRow[] = [
    {
      operation: CREATE_CLIFF,
      ours: oursCliff.gas,
      peer: "SablierLockup.createWithTimestampsLL",
      peerGas: sabCliff.gas,
    },
    {
      operation: CREATE_CLIFF,
      ours: oursCliff.gas,
      peer: "OZ VestingWalletCliff deploy+fund",
      peerGas: ozCliff.gas,
    },
    {
      operation: CREATE_PLAIN,
      ours: oursPlain.gas,
      peer: "SablierLockup.createWithTimestampsLL",
      peerGas: sabPlain.gas,
    },
    {
      operation: CREATE_PLAIN,
      ours: oursPlain.gas,
      peer: "OZ VestingWallet deploy+fund",
      peerGas: ozPlain.gas,
    },
    {
      operation: CREATE_TR,
      ours: oursTr.gas,
      peer: "SablierLockup.createWithTimestampsLT",
      peerGas: sabTr.gas,
    },
    {
      operation: CREATE_BATCH,
      ours: Math.ceil(oursBatchGas / BATCH),
      peer: "SablierBatchLockup.createWithTimestampsLL",
      peerGas: Math.ceil(sabBatchGas / BATCH),
    },
    {
      operation: REL_CLIFF,
      ours: relOursCliff,
      peer: "SablierLockup.withdrawMax",
      peerGas: relSabCliff,
    },
    {
      operation: REL_CLIFF,
      ours: relOursCliff,
      peer: "OZ VestingWalletCliff.release(token)",
      peerGas: relOzCliff,
    },
    {
      operation: REL_PLAIN,
      ours: relOursPlain,
      peer: "SablierLockup.withdrawMax",
      peerGas: relSabPlain,
    },
    {
      operation: REL_PLAIN,
      ours: relOursPlain,
      peer: "OZ VestingWallet.release(token)",
      peerGas: relOzPlain,
    },
    { operation: REL_TR, ours: relOursTr, peer: "SablierLockup.withdrawMax", peerGas: relSabTr },
  ];
  return { rows, checks: [] };
}

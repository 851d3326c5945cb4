/**
 * Gas of NodeStaking and TeeRegistry operations. No peer on the npm registry stakes nodes or registers
 * enclaves, so every row has peer null; the issue's absolute goals are checks.
 */
import {
  encodeQuorumAttestation,
  quorumDomain,
  signAttestation,
} from "../../../offchain/staking/attestation.js";
import { deployStakingAndTee } from "../../../offchain/staking/deploy.js";
import { gasOf } from "./types.js";
import type { BenchContext, GasCheck, GasRow } from "./types.js";

const OPG = 10n ** 18n;
/** 2033-05-18: after any chain clock the bench starts from. */
const ISSUED_AT = 2_000_000_000n;

export async function measure(ctx: BenchContext): Promise<{ rows: GasRow[]; checks: GasCheck[] }> {
  const { ethers, networkHelpers } = await ctx.connect();
  const [
    deployer,
    operator,
    signer,
    reporter,
    treasury,
    slasher,
    teeOperator,
    teeSigner,
    enclave,
    a1,
    a2,
    a3,
  ] = await ethers.getSigners();
  if (!deployer || !operator || !signer || !reporter || !treasury || !slasher) {
    throw new Error("not enough accounts");
  }
  if (!teeOperator || !teeSigner || !enclave || !a1 || !a2 || !a3)
    throw new Error("not enough accounts");

  // Fixed inputs, so the figures are the same on every run: a 4 KB stand-in for a Nitro document
  // (CBOR is mostly non-zero bytes), fixed node ids and enclave keys.
  const document = ethers.getBytes(
    ethers.concat(Array.from({ length: 125 }, (_, i) => ethers.id(`doc ${i}`))),
  );
  const token = await ethers.deployContract("OPGToken", [deployer.address, 10n ** 9n * OPG]);
  const { staking, tee, devVerifier, quorumVerifier } = await deployStakingAndTee(ethers, {
    token: await token.getAddress(),
    governance: deployer.address,
    treasury: treasury.address,
    slashers: [slasher.address],
    quorum: { attesters: [a1.address, a2.address, a3.address], threshold: 2 },
    activeVerifier: "dev",
  });
  if (!devVerifier || !quorumVerifier) throw new Error("verifiers were not deployed");
  const stakingAddress = await staking.getAddress();
  for (const account of [operator, teeOperator]) {
    await (await token.transfer(account.address, 1_000_000n * OPG)).wait();
    await (await token.connect(account).approve(stakingAddress, ethers.MaxUint256)).wait();
  }
  // The treasury already holds OPG, as a live treasury would.
  await (await token.transfer(treasury.address, OPG)).wait();

  const node = ethers.getAddress("0x" + "a1".repeat(20));
  const asOperator = staking.connect(operator);
  const register = await gasOf(
    asOperator.register(node, 1, signer.address, 20_000n * OPG, "https://gpu-1.example.org"),
  );
  const increase = await gasOf(asOperator.increaseStake(node, 1_000n * OPG));
  const unbond = await gasOf(asOperator.unbond(node, 100n * OPG));
  await (await asOperator.unbond(node, 100n * OPG)).wait();
  await (await asOperator.unbond(node, 100n * OPG)).wait();
  const heartbeat = await gasOf(staking.connect(signer).heartbeat(node));
  const slash = await gasOf(
    staking.connect(slasher).slash(node, 1_000n, reporter.address, false, ethers.id("evidence")),
  );
  await networkHelpers.time.increase(8 * 24 * 3600);
  const withdraw = await gasOf(asOperator.withdraw(node));

  // Enclave registration through the development verifier.
  const teeNode = ethers.getAddress("0x" + "b2".repeat(20));
  await (
    await staking
      .connect(teeOperator)
      .register(teeNode, 2, teeSigner.address, 30_000n * OPG, "https://tee-1.example.org")
  ).wait();
  const measurement = ethers.id("enclave image v1");
  await (await tee.approveMeasurement(measurement, "v1")).wait();
  const registerEnclave = await gasOf(
    tee.connect(teeSigner).registerEnclave(teeNode, enclave.address, measurement, document),
  );
  const enclaveHeartbeat = await gasOf(tee.connect(enclave).heartbeat(enclave.address));

  // The same through the 2-of-3 quorum verifier (a second enclave key of the same node).
  await (await tee.setVerifier(await quorumVerifier.getAddress())).wait();
  const { chainId } = await ethers.provider.getNetwork();
  const domain = quorumDomain(chainId, await quorumVerifier.getAddress());
  const statement = {
    node: teeNode,
    enclaveKey: ethers.getAddress("0x" + "e2".repeat(20)),
    measurement,
    documentHash: ethers.keccak256(document),
    issuedAt: ISSUED_AT, // fixed, so the signatures (and their calldata cost) are the same every run
  };
  const signatures = [
    await signAttestation(a1, domain, statement),
    await signAttestation(a2, domain, statement),
  ];
  await networkHelpers.time.setNextBlockTimestamp(ISSUED_AT + 60n);
  const registerQuorum = await gasOf(
    tee
      .connect(teeSigner)
      .registerEnclave(
        teeNode,
        statement.enclaveKey,
        measurement,
        encodeQuorumAttestation(domain, statement, signatures),
      ),
  );

  // Slashing with the remainder burned (OPG's ERC20Votes writes a total-supply checkpoint on burn).
  await (await staking.setSlashDestination(true, ethers.ZeroAddress)).wait();
  const slashBurn = await gasOf(
    staking
      .connect(slasher)
      .slash(teeNode, 1_000n, reporter.address, false, ethers.id("evidence 2")),
  );

  const row = (operation: string, ours: number): GasRow => ({
    operation: `staking: ${operation}`,
    ours,
    peer: null,
    peerGas: null,
  });
  const check = (name: string, value: number, limit: number): GasCheck => ({
    name: `staking: ${name} <= ${limit.toLocaleString("en-US")}`,
    value,
    limit,
    ok: value <= limit,
  });
  return {
    rows: [
      row("register node", register),
      row("increase stake", increase),
      row("unbond", unbond),
      row("withdraw (3 matured entries)", withdraw),
      row("heartbeat", heartbeat),
      row("slash 10% (3 unbonding entries, bounty + treasury)", slash),
      row("slash 10% (no unbonding, bounty + burn)", slashBurn),
      row("register enclave (dev verifier, 4 KB document)", registerEnclave),
      row("register enclave (2-of-3 quorum verifier)", registerQuorum),
      row("enclave heartbeat", enclaveHeartbeat),
    ],
    checks: [
      check("register", register, 150_000),
      check("heartbeat", heartbeat, 30_000),
      check("slash", slash, 120_000),
    ],
  };
}

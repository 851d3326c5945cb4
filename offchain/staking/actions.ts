/**
 * What the opg:stake:* and opg:tee:* tasks do, with prechecks that turn every predictable revert
 * into an InputError saying what is wrong and what to do. Each action returns what it did.
 */
import type { BytesLike, Signer } from "ethers";
import { hexlify } from "ethers";

import type { NodeStaking, OPGToken, TeeRegistry } from "../../types/ethers-contracts/index.js";
import { InputError } from "../common/errors.js";
import { sendOrExplain } from "./revert.js";
import { Role, formatOpg, roleName } from "./units.js";

export interface StakingHandles {
  token: OPGToken;
  staking: NodeStaking;
}

export interface TxOutcome {
  hash: string;
  gasUsed: bigint;
  /** The token approval sent first, if the allowance was too low. */
  approvalHash?: string;
}

/** INodeStaking.MAX_UNBONDING_ENTRIES (kept in sync by the tests). */
export const MAX_UNBONDING_ENTRIES = 8;

async function mined(
  tx: Promise<{ hash: string; wait: () => Promise<{ gasUsed: bigint } | null> }>,
) {
  const sent = await tx;
  const receipt = await sent.wait();
  if (receipt === null)
    throw new InputError("the transaction was dropped", { details: { hash: sent.hash } });
  return { hash: sent.hash, gasUsed: receipt.gasUsed };
}

/** Checks the operator can pay `amount` and approves the staking contract if needed. */
async function ensureFunds(
  h: StakingHandles,
  operator: Signer,
  amount: bigint,
): Promise<string | undefined> {
  const from = await operator.getAddress();
  const stakingAddress = await h.staking.getAddress();
  const balance = await h.token.balanceOf(from);
  if (balance < amount) {
    throw new InputError("the operator's OPG balance is too low", {
      details: { operator: from, balance: formatOpg(balance), needed: formatOpg(amount) },
      hint: "fund the operator account with OPG first",
    });
  }
  const allowance = await h.token.allowance(from, stakingAddress);
  if (allowance >= amount) return undefined;
  const approval = await mined(h.token.connect(operator).approve(stakingAddress, amount));
  return approval.hash;
}

/** Loads the node and checks that `caller` is its operator and that it has not exited. */
async function operatedNode(
  h: Pick<StakingHandles, "staking">,
  caller: Signer,
  node: string,
  allowExited = false,
) {
  const info = await h.staking.getNode(node);
  if (info.role === 0n) {
    throw new InputError(`unknown node ${node}`, {
      details: { node },
      hint: "check --node, or register the node with opg:stake:register",
    });
  }
  const from = await caller.getAddress();
  if (info.operator.toLowerCase() !== from.toLowerCase()) {
    throw new InputError("the sender is not the node's operator", {
      details: { node, sender: from, operator: info.operator },
      hint: "send from the operator account (the one that registered the node)",
    });
  }
  if (info.exited && !allowExited) {
    throw new InputError(`node ${node} has exited`, {
      details: { node },
      hint: "an exited node can only withdraw its unbonding stake; register a new node id to stake again",
    });
  }
  return info;
}

export interface RegisterInput {
  node: string;
  role: 1 | 2;
  signer: string;
  amount: bigint;
  metadataURI: string;
}

export async function registerNode(
  h: StakingHandles,
  operator: Signer,
  input: RegisterInput,
): Promise<TxOutcome> {
  try {
    new URL(input.metadataURI);
  } catch (cause) {
    throw new InputError("the metadata URI is not a URL", {
      details: { metadata: input.metadataURI },
      cause,
      hint: "pass the node's endpoint, e.g. https://gpu-1.example.org",
    });
  }
  const existing = await h.staking.operatorOf(input.node);
  if (existing !== "0x0000000000000000000000000000000000000000") {
    throw new InputError(`node ${input.node} is already registered`, {
      details: { node: input.node, operator: existing },
      hint: "node ids are never reused: choose a new node address",
    });
  }
  const owner = await h.staking.nodeOfSigner(input.signer);
  if (owner !== "0x0000000000000000000000000000000000000000") {
    throw new InputError("the signer key already belongs to another node", {
      details: { signer: input.signer, node: owner },
      hint: "generate a fresh signer key for this node",
    });
  }
  const minimum = await h.staking.minStake(input.role);
  if (input.amount < minimum) {
    throw new InputError(`the stake is below the ${roleName(input.role)} minimum`, {
      details: { amount: formatOpg(input.amount), minimum: formatOpg(minimum) },
      hint: `stake at least ${formatOpg(minimum)} OPG`,
    });
  }
  const approvalHash = await ensureFunds(h, operator, input.amount);
  const outcome = await sendOrExplain(h.staking.interface, "register", () =>
    mined(
      h.staking
        .connect(operator)
        .register(input.node, input.role, input.signer, input.amount, input.metadataURI),
    ),
  );
  return approvalHash === undefined ? outcome : { ...outcome, approvalHash };
}

export async function increaseStake(
  h: StakingHandles,
  operator: Signer,
  node: string,
  amount: bigint,
): Promise<TxOutcome & { active: bigint }> {
  await operatedNode(h, operator, node);
  const approvalHash = await ensureFunds(h, operator, amount);
  const outcome = await sendOrExplain(h.staking.interface, "increaseStake", () =>
    mined(h.staking.connect(operator).increaseStake(node, amount)),
  );
  const [active] = await h.staking.stakeOf(node);
  return approvalHash === undefined ? { ...outcome, active } : { ...outcome, approvalHash, active };
}

export async function unbond(
  h: StakingHandles,
  operator: Signer,
  node: string,
  amount: bigint,
): Promise<TxOutcome & { releaseTime: bigint; belowMinimum: boolean }> {
  const info = await operatedNode(h, operator, node);
  if (amount > info.active) {
    throw new InputError("the amount exceeds the node's active stake", {
      details: { node, amount: formatOpg(amount), active: formatOpg(info.active) },
      hint: `unbond at most ${formatOpg(info.active)} OPG`,
    });
  }
  if (Number(info.unbondingEntries) >= MAX_UNBONDING_ENTRIES) {
    throw new InputError("the node's unbonding queue is full", {
      details: { node, entries: info.unbondingEntries, max: MAX_UNBONDING_ENTRIES },
      hint: "withdraw matured entries first (opg:stake:withdraw)",
    });
  }
  const outcome = await sendOrExplain(h.staking.interface, "unbond", () =>
    mined(h.staking.connect(operator).unbond(node, amount)),
  );
  const entries = [...(await h.staking.unbondingEntries(node))];
  const last = entries[entries.length - 1];
  const minimum = await h.staking.minStake(info.role);
  return {
    ...outcome,
    releaseTime: last === undefined ? 0n : last.releaseTime,
    belowMinimum: info.active - amount < minimum,
  };
}

export async function withdraw(
  h: StakingHandles,
  operator: Signer,
  node: string,
): Promise<TxOutcome & { amount: bigint }> {
  const info = await operatedNode(h, operator, node, true);
  if (info.pendingSlashes > 0n) {
    throw new InputError("a governance slash against the node is pending", {
      details: { node, pendingSlashes: info.pendingSlashes },
      hint: "withdrawals resume once the request is vetoed or executed",
    });
  }
  // An ethers Result throws on an index past its end: copy it into a plain array.
  const entries = [...(await h.staking.unbondingEntries(node))];
  const now = await chainTime(h.staking);
  const first = entries[0];
  if (first === undefined) {
    throw new InputError("the node has nothing unbonding", {
      details: { node },
      hint: "unbond first (opg:stake:unbond), then wait out the unbonding delay",
    });
  }
  if (first.releaseTime > now) {
    throw new InputError("nothing has matured yet", {
      details: { node, nextRelease: new Date(Number(first.releaseTime) * 1000).toISOString() },
      hint: "wait until the next release time",
    });
  }
  const amount = await h.staking.withdrawable(node);
  const outcome = await sendOrExplain(h.staking.interface, "withdraw", () =>
    mined(h.staking.connect(operator).withdraw(node)),
  );
  return { ...outcome, amount };
}

export async function approveMeasurement(
  tee: TeeRegistry,
  governance: Signer,
  measurement: string,
  label: string,
): Promise<TxOutcome> {
  const from = await governance.getAddress();
  if (!(await tee.hasRole(await tee.GOVERNANCE_ROLE(), from))) {
    throw new InputError("the sender does not hold TeeRegistry's GOVERNANCE_ROLE", {
      details: { sender: from },
      hint: "governance is a TimelockController: schedule approveMeasurement through it",
    });
  }
  if (await tee.isMeasurementApproved(measurement)) {
    throw new InputError("the measurement is already approved", { details: { measurement } });
  }
  return sendOrExplain(tee.interface, "approveMeasurement", () =>
    mined(tee.connect(governance).approveMeasurement(measurement, label)),
  );
}

export interface EnclaveInput {
  node: string;
  enclaveKey: string;
  measurement: string;
  attestation: BytesLike;
}

export async function registerEnclave(
  tee: TeeRegistry,
  staking: NodeStaking,
  caller: Signer,
  input: EnclaveInput,
): Promise<TxOutcome & { expiresAt: bigint }> {
  const info = await staking.getNode(input.node);
  if (info.role !== BigInt(Role.VERIFIER)) {
    throw new InputError(
      info.role === 0n ? `unknown node ${input.node}` : "the node is not a VERIFIER node",
      {
        details: { node: input.node, role: roleName(info.role) },
        hint: "register a TEE node with opg:stake:register --role verifier",
      },
    );
  }
  const from = (await caller.getAddress()).toLowerCase();
  if (from !== info.operator.toLowerCase() && from !== info.signer.toLowerCase()) {
    throw new InputError("the sender is neither the node's operator nor its signer", {
      details: { node: input.node, sender: from, operator: info.operator, signer: info.signer },
    });
  }
  if (!(await staking.isActive(input.node))) {
    throw new InputError("the node is not active", {
      details: {
        node: input.node,
        jailed: info.jailed,
        exited: info.exited,
        active: formatOpg(info.active),
      },
      hint: "top up the stake to the minimum or unjail the node first",
    });
  }
  if (!(await tee.isMeasurementApproved(input.measurement))) {
    throw new InputError("the enclave measurement is not approved", {
      details: { measurement: input.measurement },
      hint: "governance approves images with opg:tee:approve-measurement",
    });
  }
  const owner = await tee.nodeOfEnclave(input.enclaveKey);
  if (owner !== "0x0000000000000000000000000000000000000000") {
    throw new InputError(
      "the enclave key has registered before: a key registers once, for one node",
      {
        details: { enclaveKey: input.enclaveKey, node: owner },
        hint: "renew its registration with opg:tee:renew, or start the enclave again for a new key",
      },
    );
  }
  if (hexlify(input.attestation) === "0x") {
    throw new InputError("the attestation is empty", { hint: "pass the attestation bytes" });
  }
  const outcome = await sendOrExplain(tee.interface, "registerEnclave", () =>
    mined(
      tee
        .connect(caller)
        .registerEnclave(input.node, input.enclaveKey, input.measurement, input.attestation),
    ),
  );
  const enclave = await tee.getEnclave(input.enclaveKey);
  return { ...outcome, expiresAt: enclave.expiresAt };
}

/** NodeStaking.heartbeat from the node's signer key. */
export async function heartbeatNode(
  staking: NodeStaking,
  signer: Signer,
  node: string,
): Promise<TxOutcome & { deadline: bigint }> {
  const info = await staking.getNode(node);
  if (info.operator === "0x0000000000000000000000000000000000000000") {
    throw new InputError(`unknown node ${node}`, { details: { node } });
  }
  const from = await signer.getAddress();
  if (from.toLowerCase() !== info.signer.toLowerCase()) {
    throw new InputError("heartbeats are sent by the node's signer key", {
      details: { node, sender: from, signer: info.signer },
      hint: "pass --from <the node's signer>",
    });
  }
  const outcome = await sendOrExplain(staking.interface, "heartbeat", () =>
    mined(staking.connect(signer).heartbeat(node)),
  );
  return { ...outcome, deadline: await staking.heartbeatDeadline(node) };
}

/** A TeeRegistry enclave call by its node's operator or signer (or the key itself). */
async function enclaveCall(
  tee: TeeRegistry,
  staking: NodeStaking,
  caller: Signer,
  enclaveKey: string,
  send: (tee: TeeRegistry) => Promise<{ hash: string; gasUsed: bigint }>,
  what: string,
): Promise<TxOutcome & { expiresAt: bigint }> {
  const record = await tee.getEnclave(enclaveKey);
  if (record.node === "0x0000000000000000000000000000000000000000") {
    throw new InputError(`enclave ${enclaveKey} is not registered`, {
      details: { enclaveKey },
      hint: "register it first: opg:tee:register",
    });
  }
  if (record.deregisteredAt !== 0n) {
    throw new InputError(`enclave ${enclaveKey} was deregistered and cannot be used again`, {
      details: { enclaveKey, deregisteredAt: record.deregisteredAt },
      hint: "start the enclave again for a new key and register that one",
    });
  }
  const info = await staking.getNode(record.node);
  const from = (await caller.getAddress()).toLowerCase();
  if (
    from !== info.operator.toLowerCase() &&
    from !== info.signer.toLowerCase() &&
    from !== enclaveKey.toLowerCase()
  ) {
    throw new InputError("the sender is neither the node's operator, its signer nor the key", {
      details: { enclaveKey, sender: from, operator: info.operator, signer: info.signer },
    });
  }
  const outcome = await sendOrExplain(tee.interface, what, () => send(tee.connect(caller)));
  return { ...outcome, expiresAt: (await tee.getEnclave(enclaveKey)).expiresAt };
}

/** TeeRegistry.heartbeat: extends the registration without a new attestation. */
export async function heartbeatEnclave(
  tee: TeeRegistry,
  staking: NodeStaking,
  caller: Signer,
  enclaveKey: string,
): Promise<TxOutcome & { expiresAt: bigint }> {
  return enclaveCall(
    tee,
    staking,
    caller,
    enclaveKey,
    (t) => mined(t.heartbeat(enclaveKey)),
    "heartbeat",
  );
}

/** TeeRegistry.renewEnclave: extends the registration with a fresh attestation document. */
export async function renewEnclave(
  tee: TeeRegistry,
  staking: NodeStaking,
  caller: Signer,
  enclaveKey: string,
  attestation: BytesLike,
): Promise<TxOutcome & { expiresAt: bigint }> {
  if (hexlify(attestation) === "0x") {
    throw new InputError("the attestation is empty", { hint: "pass the attestation bytes" });
  }
  return enclaveCall(
    tee,
    staking,
    caller,
    enclaveKey,
    (t) => mined(t.renewEnclave(enclaveKey, attestation)),
    "renewEnclave",
  );
}

/**
 * NodeStaking.rotateSigner: from now on `newSigner` signs the node's receipts and heartbeats. The old
 * key stays the node's for evidence dated while it was current (docs/staking-tee.md), so a key can
 * serve one node once: a key used before, by any node, is refused.
 */
export async function rotateSigner(
  staking: NodeStaking,
  operator: Signer,
  node: string,
  newSigner: string,
): Promise<TxOutcome & { oldSigner: string }> {
  const info = await operatedNode({ staking }, operator, node, true);
  const record = await staking.signerRecordOf(newSigner);
  if (record.node !== ZERO_ADDRESS) {
    throw new InputError(`the key ${newSigner} has signed for a node before`, {
      details: { signer: newSigner, node: record.node },
      hint: "generate a new key for the node's signer; keys are never reused (evidence stays bound to them)",
    });
  }
  const outcome = await sendOrExplain(staking.interface, "rotateSigner", () =>
    mined(staking.connect(operator).rotateSigner(node, newSigner)),
  );
  return { ...outcome, oldSigner: info.signer };
}

/** NodeStaking.setPayee: where the node's fees go (zero: back to the operator). */
export async function setPayee(
  staking: NodeStaking,
  operator: Signer,
  node: string,
  payee: string,
): Promise<TxOutcome> {
  await operatedNode({ staking }, operator, node, true);
  return sendOrExplain(staking.interface, "setPayee", () =>
    mined(staking.connect(operator).setPayee(node, payee)),
  );
}

/** NodeStaking.unjail, once the jail's cool-down has passed. */
export async function unjail(
  staking: NodeStaking,
  operator: Signer,
  node: string,
): Promise<TxOutcome> {
  const info = await operatedNode({ staking }, operator, node);
  if (!info.jailed) {
    throw new InputError(`node ${node} is not jailed`, { details: { node } });
  }
  const now = await chainTime(staking);
  if (now < info.jailedUntil) {
    throw new InputError("the node's jail cool-down has not passed", {
      details: { node, jailedUntil: new Date(Number(info.jailedUntil) * 1000).toISOString() },
      hint: "unjail after that time",
    });
  }
  return sendOrExplain(staking.interface, "unjail", () =>
    mined(staking.connect(operator).unjail(node)),
  );
}

/** NodeStaking.exit: all active stake starts unbonding (still slashable) and the node never serves again. */
export async function exitNode(
  staking: NodeStaking,
  operator: Signer,
  node: string,
): Promise<TxOutcome & { amount: bigint }> {
  const info = await operatedNode({ staking }, operator, node);
  const outcome = await sendOrExplain(staking.interface, "exit", () =>
    mined(staking.connect(operator).exit(node)),
  );
  return { ...outcome, amount: info.active };
}

/** TeeRegistry.deregisterEnclave: the key serves no more; its binding to the node stays for evidence. */
export async function deregisterEnclave(
  tee: TeeRegistry,
  staking: NodeStaking,
  caller: Signer,
  enclaveKey: string,
): Promise<TxOutcome> {
  const { hash, gasUsed } = await enclaveCall(
    tee,
    staking,
    caller,
    enclaveKey,
    (t) => mined(t.deregisterEnclave(enclaveKey)),
    "deregisterEnclave",
  );
  return { hash, gasUsed };
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** The chain's time (the latest block's), which the contracts compare with, not this machine's. */
async function chainTime(staking: NodeStaking): Promise<bigint> {
  const block = await staking.runner?.provider?.getBlock("latest");
  return BigInt(block?.timestamp ?? Math.floor(Date.now() / 1000));
}

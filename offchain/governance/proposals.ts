/**
 * Acting through governance: delegate votes, propose, vote, queue, execute, and read proposals back from
 * the governor's events. The opg:gov:* tasks, the demo and the tests all go through these functions; each
 * checks the proposal's state first and says what to wait for, instead of sending a transaction that
 * would revert.
 */
import type {
  ContractTransactionReceipt,
  ContractTransactionResponse,
  Provider,
  Signer,
} from "ethers";
import { formatUnits, getAddress, id as keccakText } from "ethers";

import type { OPGGovernor, OPGTimelock, OPGToken } from "../../types/ethers-contracts/index.js";
import {
  OPGGovernor__factory,
  OPGTimelock__factory,
  OPGToken__factory,
} from "../../types/ethers-contracts/index.js";
import { BaseError, InputError } from "../common/errors.js";
import { addressOf, readRecord } from "../chain/deployment.js";

import { describeCall } from "./contracts.js";

export interface GovernanceHandles {
  governor: OPGGovernor;
  token: OPGToken;
  timelock: OPGTimelock;
  /** Block the governor was deployed in: proposals are read from its events from there on. */
  fromBlock: number;
  /** The deployment's contracts (name -> address), to describe calls. */
  addresses: Record<string, string>;
}

/** IGovernor.ProposalState, by its number. */
export const PROPOSAL_STATES = [
  "Pending",
  "Active",
  "Canceled",
  "Defeated",
  "Succeeded",
  "Queued",
  "Expired",
  "Executed",
] as const;
export type ProposalStateName = (typeof PROPOSAL_STATES)[number];

/** GovernorCountingSimple's support values. */
export const SUPPORT = { against: 0, for: 1, abstain: 2 } as const;
export type SupportName = keyof typeof SUPPORT;

export interface ProposalCall {
  target: string;
  value: bigint;
  data: string;
}

export interface ProposalInput {
  calls: ProposalCall[];
  description: string;
}

export interface ProposalInfo {
  id: bigint;
  state: ProposalStateName;
  proposer: string;
  description: string;
  calls: Array<ProposalCall & { summary: string }>;
  /** Votes are counted at this time (the snapshot); voting opens just after it. */
  voteStart: bigint;
  /** Voting closes after this time. */
  voteEnd: bigint;
  /** When a queued proposal may be executed (0 before it is queued). */
  eta: bigint;
  votes: { against: bigint; for: bigint; abstain: bigint };
  /** Votes (for + abstain) needed, at the snapshot. */
  quorum: bigint;
  createdBlock: number;
  createdTx: string;
}

/** The governor, token and timelock of a deployment folder (deployments/<network>). */
export async function loadGovernance(
  runner: Signer | Provider,
  dir: string,
): Promise<GovernanceHandles> {
  const record = await readRecord(dir);
  const addresses = Object.fromEntries(
    Object.entries(record?.contracts ?? {}).map(([n, c]) => [n, c.address]),
  );
  return {
    governor: OPGGovernor__factory.connect(await addressOf(dir, "OPGGovernor"), runner),
    token: OPGToken__factory.connect(await addressOf(dir, "OPGToken"), runner),
    timelock: OPGTimelock__factory.connect(await addressOf(dir, "OPGTimelock"), runner),
    fromBlock: record?.contracts.OPGGovernor?.block ?? 0,
    addresses,
  };
}

/** Parses a proposal id (a decimal uint256 as the governor prints it). */
export function parseProposalId(value: string | undefined): bigint {
  if (value === undefined || value.trim() === "") {
    throw new InputError("--id is required", {
      hint: "pass the proposal id printed by opg:gov:propose, or list them with opg:gov:status",
    });
  }
  try {
    const id = BigInt(value.trim());
    if (id <= 0n) throw new Error("not positive");
    return id;
  } catch (cause) {
    throw new InputError(`"${value}" is not a proposal id`, {
      cause,
      hint: "a proposal id is a (long) decimal number; list them with opg:gov:status",
    });
  }
}

export function parseSupport(value: string | undefined): SupportName {
  const key = (value ?? "").trim().toLowerCase();
  if (key in SUPPORT) return key as SupportName;
  throw new InputError(`--support must be for, against or abstain`, {
    details: { support: value ?? "" },
  });
}

/** Delegates `holder`'s votes to `to` (itself by default). Sends nothing if that is the delegate already. */
export async function delegateVotes(
  token: OPGToken,
  holder: Signer,
  to?: string,
): Promise<{ delegatee: string; txHash: string | null; balance: bigint; votes: bigint }> {
  const me = await holder.getAddress();
  const delegatee = getAddress(to ?? me);
  let txHash: string | null = null;
  if (getAddress(await token.delegates(me)) !== delegatee) {
    txHash = (await mined(token.connect(holder).delegate(delegatee))).hash;
  }
  return {
    delegatee,
    txHash,
    balance: await token.balanceOf(me),
    votes: await token.getVotes(delegatee),
  };
}

/** The id the governor gives these calls with this description. */
export async function proposalIdOf(governor: OPGGovernor, input: ProposalInput): Promise<bigint> {
  const { targets, values, datas } = columns(input.calls);
  return governor.hashProposal(targets, values, datas, keccakText(input.description));
}

export async function propose(
  h: GovernanceHandles,
  proposer: Signer,
  input: ProposalInput,
): Promise<{ proposalId: bigint; txHash: string; voteStart: bigint; voteEnd: bigint }> {
  if (input.calls.length === 0) throw new InputError("a proposal needs at least one call");
  const proposalId = await proposalIdOf(h.governor, input);
  if ((await h.governor.proposalSnapshot(proposalId)) !== 0n) {
    const state = PROPOSAL_STATES[Number(await h.governor.state(proposalId))];
    throw new InputError(`this proposal exists already (${state})`, {
      details: { id: proposalId },
      hint: "see it with opg:gov:status --id; to propose the same calls again, give another --description",
    });
  }
  const me = await proposer.getAddress();
  // The governor counts the proposer's votes one second before the proposing block: those it has now.
  const [threshold, votes] = await Promise.all([
    h.governor.proposalThreshold(),
    h.token.getVotes(me),
  ]);
  if (votes < threshold) {
    throw new InputError(`${me} has ${votes} votes; proposing needs ${threshold}`, {
      details: { proposer: me, votes, threshold },
      hint: "delegate votes to the proposer first (opg:gov:delegate): votes count from the block after",
    });
  }
  const { targets, values, datas } = columns(input.calls);
  const receipt = await mined(
    h.governor.connect(proposer).propose(targets, values, datas, input.description),
  );
  const [voteStart, voteEnd] = await Promise.all([
    h.governor.proposalSnapshot(proposalId),
    h.governor.proposalDeadline(proposalId),
  ]);
  return { proposalId, txHash: receipt.hash, voteStart, voteEnd };
}

export async function castVote(
  h: GovernanceHandles,
  voter: Signer,
  proposalId: bigint,
  support: SupportName,
  reason = "",
): Promise<{ txHash: string; weight: bigint }> {
  const state = await stateOf(h.governor, proposalId);
  if (state !== "Active") {
    const [start, end] = await Promise.all([
      h.governor.proposalSnapshot(proposalId),
      h.governor.proposalDeadline(proposalId),
    ]);
    throw new InputError(`proposal is ${state}: votes are taken only while it is Active`, {
      details: {
        id: proposalId,
        votingOpensAfter: isoTime(start),
        votingClosesAfter: isoTime(end),
      },
    });
  }
  const me = await voter.getAddress();
  if (await h.governor.hasVoted(proposalId, me)) {
    throw new InputError(`${me} has voted on this proposal already`, {
      details: { id: proposalId },
    });
  }
  const weight = await h.governor.getVotes(me, await h.governor.proposalSnapshot(proposalId));
  if (weight === 0n) {
    throw new InputError(`${me} had no votes at the proposal's snapshot`, {
      details: { id: proposalId, snapshot: isoTime(await h.governor.proposalSnapshot(proposalId)) },
      hint: "votes must be delegated (opg:gov:delegate) before a proposal's snapshot to count in it",
    });
  }
  const governor = h.governor.connect(voter);
  const receipt = await mined(
    reason === ""
      ? governor.castVote(proposalId, SUPPORT[support])
      : governor.castVoteWithReason(proposalId, SUPPORT[support], reason),
  );
  return { txHash: receipt.hash, weight };
}

export async function queueProposal(
  h: GovernanceHandles,
  signer: Signer,
  proposalId: bigint,
): Promise<{ txHash: string; eta: bigint }> {
  const info = await readProposal(h, proposalId);
  if (info.state !== "Succeeded") {
    throw new InputError(`proposal is ${info.state}: only a Succeeded proposal can be queued`, {
      details: stateDetails(info),
    });
  }
  const { targets, values, datas } = columns(info.calls);
  const receipt = await mined(
    h.governor.connect(signer).queue(targets, values, datas, keccakText(info.description)),
  );
  return { txHash: receipt.hash, eta: await h.governor.proposalEta(proposalId) };
}

export async function executeProposal(
  h: GovernanceHandles,
  signer: Signer,
  proposalId: bigint,
): Promise<{ txHash: string; gasUsed: bigint }> {
  const info = await readProposal(h, proposalId);
  if (info.state !== "Queued") {
    throw new InputError(`proposal is ${info.state}: only a Queued proposal can be executed`, {
      details: stateDetails(info),
    });
  }
  const now = await latestTime(h.governor);
  if (now < info.eta) {
    throw new InputError(`proposal is queued in the timelock until ${isoTime(info.eta)}`, {
      details: { id: proposalId, eta: info.eta, now, wait: `${info.eta - now} s` },
    });
  }
  const { targets, values, datas } = columns(info.calls);
  const total = values.reduce((a, b) => a + b, 0n);
  const receipt = await mined(
    h.governor
      .connect(signer)
      .execute(targets, values, datas, keccakText(info.description), { value: total }),
  );
  return { txHash: receipt.hash, gasUsed: receipt.gasUsed };
}

/** Every proposal of the governor, oldest first, read from its ProposalCreated events. */
export async function listProposals(h: GovernanceHandles): Promise<ProposalInfo[]> {
  const out: ProposalInfo[] = [];
  for (const e of await createdEvents(h)) out.push(await infoOf(h, e));
  return out;
}

export async function readProposal(
  h: GovernanceHandles,
  proposalId: bigint,
): Promise<ProposalInfo> {
  const event = (await createdEvents(h)).find((e) => e.args.proposalId === proposalId);
  if (event === undefined) {
    throw new InputError(`no proposal ${proposalId} on this governor`, {
      details: { governor: await h.governor.getAddress(), fromBlock: h.fromBlock },
      hint: "list the proposals with opg:gov:status",
    });
  }
  return infoOf(h, event);
}

function createdEvents(h: GovernanceHandles) {
  return h.governor.queryFilter(h.governor.filters.ProposalCreated(), h.fromBlock, "latest");
}

async function infoOf(
  h: GovernanceHandles,
  event: Awaited<ReturnType<typeof createdEvents>>[number],
): Promise<ProposalInfo> {
  const a = event.args;
  const id = a.proposalId;
  const [state, votes, eta] = await Promise.all([
    stateOf(h.governor, id),
    h.governor.proposalVotes(id),
    h.governor.proposalEta(id),
  ]);
  const now = await latestTime(h.governor);
  // quorum(t) needs t in the past; before the snapshot, the quorum of now is the best estimate.
  const quorum = await h.governor.quorum(a.voteStart < now ? a.voteStart : now - 1n);
  return {
    id,
    state,
    proposer: a.proposer,
    description: a.description,
    // a[3] is the values column (`a.values` is Array#values on an ethers Result).
    calls: a.targets.map((target, i) => ({
      target,
      value: a[3][i]!,
      data: a.calldatas[i]!,
      summary: describeCall(h.addresses, target, a.calldatas[i]!, a[3][i]),
    })),
    voteStart: a.voteStart,
    voteEnd: a.voteEnd,
    eta,
    votes: { against: votes[0], for: votes[1], abstain: votes[2] },
    quorum,
    createdBlock: event.blockNumber,
    createdTx: event.transactionHash,
  };
}

async function stateOf(governor: OPGGovernor, id: bigint): Promise<ProposalStateName> {
  if ((await governor.proposalSnapshot(id)) === 0n) {
    throw new InputError(`no proposal ${id} on this governor`, {
      hint: "list the proposals with opg:gov:status",
    });
  }
  return PROPOSAL_STATES[Number(await governor.state(id))]!;
}

/**
 * What to wait for next, in words: "voting opens after …", "voting closes after …", "executable from …".
 * Null when nothing is left to wait for.
 */
export function nextStep(info: ProposalInfo): string | null {
  switch (info.state) {
    case "Pending":
      return `voting opens after ${isoTime(info.voteStart)}`;
    case "Active":
      return `voting closes after ${isoTime(info.voteEnd)}`;
    case "Succeeded":
      return "passed: queue it (opg:gov:queue)";
    case "Queued":
      return `executable from ${isoTime(info.eta)} (opg:gov:execute)`;
    default:
      return null;
  }
}

function stateDetails(info: ProposalInfo): Record<string, unknown> {
  const next = nextStep(info);
  return { id: info.id, state: info.state, ...(next === null ? {} : { next }) };
}

/**
 * A proposal's whole path, through the same functions as the tasks: every voter delegates to itself,
 * `proposer` proposes, every voter votes for, then the vote closes, the proposal is queued and, after the
 * timelock delay, executed. `waitUntil(t)` lets time reach t (a local chain moves its clock; a real one
 * waits). Returns the proposal id and the gas of the execution.
 */
export async function passProposal(
  h: GovernanceHandles,
  actors: { proposer: Signer; voters: Signer[] },
  input: ProposalInput,
  waitUntil: (timestamp: bigint) => Promise<void>,
  log: (line: string) => void = () => {},
): Promise<{ proposalId: bigint; executeGas: bigint }> {
  for (const voter of [actors.proposer, ...actors.voters]) {
    await delegateVotes(h.token, voter);
  }
  const proposalId = await proposalIdOf(h.governor, input);
  if ((await h.governor.proposalSnapshot(proposalId)) === 0n) {
    const p = await propose(h, actors.proposer, input);
    log(
      `proposal ${short(p.proposalId)} made; voting after ${isoTime(p.voteStart)} until ${isoTime(p.voteEnd)}`,
    );
  }
  let info = await readProposal(h, proposalId);
  if (info.state === "Pending") await waitUntil(info.voteStart + 1n);
  if ((await stateOf(h.governor, proposalId)) === "Active") {
    for (const voter of actors.voters) {
      if (!(await h.governor.hasVoted(proposalId, await voter.getAddress()))) {
        await castVote(h, voter, proposalId, "for");
      }
    }
    info = await readProposal(h, proposalId);
    log(
      `votes for ${formatVotes(info.votes.for)} OPG (quorum ${formatVotes(info.quorum)}); the vote closes after ${isoTime(info.voteEnd)}`,
    );
    await waitUntil(info.voteEnd + 1n);
  }
  if ((await stateOf(h.governor, proposalId)) === "Succeeded") {
    const q = await queueProposal(h, actors.proposer, proposalId);
    log(`passed and queued in the timelock; executable from ${isoTime(q.eta)}`);
  }
  info = await readProposal(h, proposalId);
  if (info.state === "Executed") return { proposalId, executeGas: 0n };
  if (info.state !== "Queued") {
    throw new BaseError(`proposal ended ${info.state}`, { details: stateDetails(info) });
  }
  await waitUntil(info.eta);
  const done = await executeProposal(h, actors.proposer, proposalId);
  log(`executed (tx ${done.txHash})`);
  return { proposalId, executeGas: done.gasUsed };
}

/** A local chain's waitUntil: the next block is mined at `timestamp` unless the chain is past it. */
export function localClock(provider: {
  send(method: string, params: unknown[]): Promise<unknown>;
  getBlock(tag: "latest"): Promise<{ timestamp: number } | null>;
}): (timestamp: bigint) => Promise<void> {
  return async (timestamp) => {
    const block = await provider.getBlock("latest");
    if (BigInt(block?.timestamp ?? 0) >= timestamp) return;
    await provider.send("evm_setNextBlockTimestamp", [Number(timestamp)]);
    await provider.send("evm_mine", []);
  };
}

/** Votes are OPG wei: whole tokens are easier to read ("299,950,000"). */
export function formatVotes(wei: bigint): string {
  const [whole, frac] = formatUnits(wei, 18).split(".");
  const grouped = BigInt(whole!).toLocaleString("en-US");
  return frac === undefined || frac === "0" ? grouped : `${grouped}.${frac}`;
}

export function isoTime(t: bigint): string {
  return new Date(Number(t) * 1000).toISOString().replace(".000Z", "Z");
}

/** A proposal id is 77 digits; its first and last few are enough to tell proposals apart in a log. */
export function short(id: bigint): string {
  const s = id.toString();
  return s.length > 14 ? `${s.slice(0, 6)}…${s.slice(-6)}` : s;
}

async function latestTime(governor: OPGGovernor): Promise<bigint> {
  const block = await governor.runner!.provider!.getBlock("latest");
  return BigInt(block?.timestamp ?? 0);
}

function columns(calls: ProposalCall[]) {
  return {
    targets: calls.map((c) => c.target),
    values: calls.map((c) => c.value),
    datas: calls.map((c) => c.data),
  };
}

async function mined(
  tx: Promise<ContractTransactionResponse>,
): Promise<ContractTransactionReceipt> {
  const receipt = await (await tx).wait();
  if (receipt === null || receipt.status !== 1)
    throw new BaseError("governance transaction failed");
  return receipt;
}

/** The handles of a freshly deployed system (offchain/deploy/system.ts returns these contracts). */
export function governanceOf(
  system: {
    governor: OPGGovernor;
    token: OPGToken;
    timelock: OPGTimelock;
    addresses: Record<string, string>;
  },
  fromBlock = 0,
): GovernanceHandles {
  return {
    governor: system.governor,
    token: system.token,
    timelock: system.timelock,
    fromBlock,
    addresses: system.addresses,
  };
}

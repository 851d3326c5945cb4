/** What the opg:gov:* tasks print: one proposal in full, or a table of all of them. */
import Table from "cli-table3";

import type { ProposalInfo } from "./proposals.js";
import { formatVotes, isoTime, nextStep } from "./proposals.js";

export { formatVotes } from "./proposals.js";

const plain = { head: [] as string[], border: [] as string[] };

export function formatProposal(p: ProposalInfo): string {
  const next = nextStep(p);
  const lines = [
    `proposal ${p.id}`,
    `  state:       ${p.state}${next === null ? "" : ` (${next})`}`,
    `  proposer:    ${p.proposer} (block ${p.createdBlock}, tx ${p.createdTx})`,
    `  description: ${p.description.split("\n").join("\n               ")}`,
    `  calls:`,
    ...p.calls.map((c, i) => `    ${i + 1}. ${c.summary}`),
    `  voting:      after ${isoTime(p.voteStart)} until ${isoTime(p.voteEnd)}`,
    `  votes:       for ${formatVotes(p.votes.for)}, against ${formatVotes(p.votes.against)}, abstain ${formatVotes(p.votes.abstain)} OPG (quorum ${formatVotes(p.quorum)}: for + abstain)`,
  ];
  if (p.eta !== 0n) lines.push(`  executable:  from ${isoTime(p.eta)}`);
  return lines.join("\n");
}

export function formatProposalTable(list: ProposalInfo[]): string {
  if (list.length === 0) return "no proposals";
  const table = new Table({
    head: ["id", "state", "calls", "for / against / abstain (OPG)", "next"],
    style: plain,
  });
  for (const p of list) {
    table.push([
      p.id.toString(),
      p.state,
      p.calls.map((c) => c.summary).join("\n"),
      `${formatVotes(p.votes.for)} / ${formatVotes(p.votes.against)} / ${formatVotes(p.votes.abstain)}`,
      nextStep(p) ?? "-",
    ]);
  }
  return table.toString();
}

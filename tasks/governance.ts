/**
 * opg:governance:audit (who holds what, against deployments/<network>/governance.json) and opg:gov:*
 * (act through the governor without hand-made calldata). Thin wrappers over offchain/governance.
 * Exit codes: 1 when the audit finds a problem or a transaction fails, 2 on bad input (including acting on
 * a proposal in the wrong state: the message says what to wait for).
 */
import { task } from "hardhat/config";

import { image } from "./tee.js";
import { afterBuild } from "./lib.js";

const from = {
  name: "from" as const,
  description: "Sending account (an address among the network's accounts; default: the first)",
  defaultValue: "",
};
const proposalId = {
  name: "id" as const,
  description: "The proposal id (opg:gov:status lists them)",
  defaultValue: "",
};

export const governanceTasks = [
  task(
    "opg:governance:audit",
    "Every role of every contract and who holds it, on chain, against governance.json; exit 1 on a difference or a single key holding a power",
  )
    .addOption({
      name: "record",
      description: "Expected holders (default deployments/<network>/governance.json)",
      defaultValue: "",
    })
    .addFlag({ name: "json", description: "Print JSON" })
    .setAction(afterBuild(() => import("./actions/governance-audit.js")))
    .build(),
  task(
    "opg:gov:delegate",
    "Delegate an account's OPG votes (to itself by default): votes count only once delegated",
  )
    .addOption({
      name: "to",
      description: "Delegate (default: the sending account)",
      defaultValue: "",
    })
    .addOption(from)
    .setAction(afterBuild(() => import("./actions/gov-delegate.js")))
    .build(),
  task("opg:gov:propose", "Propose a governance action (named, or a raw call) to the governor")
    .addOption({
      name: "action",
      description:
        "approve-measurement | revoke-measurement | set-slash-params | set-sample-rate | set-min-stake | set-unbonding-delay | set-assignment-window | call",
      defaultValue: "",
    })
    .addOption(image.measurement)
    .addOption(image.pcr0)
    .addOption(image.pcr1)
    .addOption(image.pcr2)
    .addOption(image.label)
    .addOption({
      name: "offence",
      description: "set-slash-params: double-receipt | contradicted-receipt | batch-equivocation",
      defaultValue: "",
    })
    .addOption({
      name: "bps",
      description: "set-slash-params: slash in basis points",
      defaultValue: "",
    })
    .addOption({ name: "jail", description: "set-slash-params: true or false", defaultValue: "" })
    .addOption({
      name: "cooldown",
      description: "set-slash-params: seconds before the offence type can slash the node again",
      defaultValue: "86400",
    })
    .addOption({
      name: "forCause",
      description:
        "revoke-measurement: true (a broken image: its evidence is void) or false (retired)",
      defaultValue: "",
    })
    .addOption({
      name: "rate",
      description: "set-sample-rate: the re-execution rate, a fraction in (0, 1]",
      defaultValue: "",
    })
    .addOption({
      name: "ppm",
      description: "set-sample-rate: the rate in parts per million (1..1,000,000)",
      defaultValue: "",
    })
    .addOption({
      name: "role",
      description: "set-min-stake: inference or verifier",
      defaultValue: "",
    })
    .addOption({
      name: "amount",
      description: "set-min-stake: minimum stake in OPG",
      defaultValue: "",
    })
    .addOption({
      name: "seconds",
      description:
        "set-unbonding-delay: the delay in seconds; set-assignment-window: the window in seconds (0..3600)",
      defaultValue: "",
    })
    .addOption({
      name: "target",
      description: "call: target contract (an address or a name from addresses.json)",
      defaultValue: "",
    })
    .addOption({ name: "signature", description: 'call: "fn(type,...)"', defaultValue: "" })
    .addOption({
      name: "args",
      description: "call: arguments, a JSON array or comma-separated",
      defaultValue: "",
    })
    .addOption({ name: "value", description: "call: wei sent with the call", defaultValue: "" })
    .addOption({
      name: "description",
      description: "The proposal's description (default: the action and its call)",
      defaultValue: "",
    })
    .addOption(from)
    .setAction(afterBuild(() => import("./actions/gov-propose.js")))
    .build(),
  task("opg:gov:vote", "Vote on an active proposal")
    .addOption(proposalId)
    .addOption({ name: "support", description: "for | against | abstain", defaultValue: "" })
    .addOption({ name: "reason", description: "A reason recorded with the vote", defaultValue: "" })
    .addOption(from)
    .setAction(afterBuild(() => import("./actions/gov-vote.js")))
    .build(),
  task("opg:gov:queue", "Queue a succeeded proposal in the timelock (anyone may send)")
    .addOption(proposalId)
    .addOption(from)
    .setAction(afterBuild(() => import("./actions/gov-queue.js")))
    .build(),
  task(
    "opg:gov:execute",
    "Execute a queued proposal once the timelock delay has passed (anyone may send)",
  )
    .addOption(proposalId)
    .addOption(from)
    .setAction(afterBuild(() => import("./actions/gov-execute.js")))
    .build(),
  task(
    "opg:gov:status",
    "A proposal's state, votes and calls by id, or every proposal (from the governor's events)",
  )
    .addOption({ name: "id", description: "Only this proposal", defaultValue: "" })
    .addFlag({ name: "json", description: "Print JSON" })
    .setAction(afterBuild(() => import("./actions/gov-status.js")))
    .build(),
];

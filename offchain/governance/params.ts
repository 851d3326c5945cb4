/**
 * The governance parameters of a deployment and the two refusals the deploy makes before it sends
 * anything: a parameter set under which stakers cannot leave before a hostile change lands, and (off
 * local chains) a guardian or rewards updater left to default to the deployer's key.
 */
import { InputError } from "../common/errors.js";
import { LOCAL_CHAIN_IDS } from "../staking/units.js";

const DAY = 86_400n;
const OPG = 10n ** 18n;

/** OPGGovernor's constructor settings; durations in seconds (the token's clock is timestamps). */
export interface GovernorSettings {
  /** From a proposal to the snapshot of votes and the start of voting. */
  votingDelay: bigint;
  /** How long the vote stays open. */
  votingPeriod: bigint;
  /** Votes (wei of OPG) a proposer needs. */
  proposalThreshold: bigint;
  /** Quorum in percent of the total supply at the snapshot (for + abstain votes count). */
  quorumPercent: bigint;
}

/**
 * The defaults: a proposal lands at the earliest 1 + 5 + 2 = 8 days after it is made, one day more than
 * NodeStaking's default unbonding delay (7 days), so a staker who sees a hostile proposal has a day to
 * start unbonding and still withdraws before it can execute.
 */
export const DEFAULT_GOVERNOR_SETTINGS: GovernorSettings = {
  votingDelay: DAY,
  votingPeriod: 5n * DAY,
  proposalThreshold: 1_000_000n * OPG,
  quorumPercent: 4n,
};

/** Seconds every change waits in OPGTimelock after its proposal passed (default 2 days). */
export const DEFAULT_TIMELOCK_DELAY = 2n * DAY;

export interface ExitWindow {
  /** NodeStaking's unbonding delay. */
  unbondingDelay: bigint;
  votingDelay: bigint;
  votingPeriod: bigint;
  timelockDelay: bigint;
}

/** The earliest a change can run after its proposal: voting delay + voting period + timelock delay. */
export function governanceLatency(w: Omit<ExitWindow, "unbondingDelay">): bigint {
  return w.votingDelay + w.votingPeriod + w.timelockDelay;
}

/**
 * Refuses parameters under which a staker who starts unbonding the moment a hostile proposal appears could
 * not withdraw before it executes: the unbonding delay must be shorter than voting delay + voting period +
 * timelock delay. Returns the margin (seconds a staker has to notice and react).
 */
export function checkExitWindow(w: ExitWindow, what = "these parameters"): bigint {
  const latency = governanceLatency(w);
  if (w.unbondingDelay >= latency) {
    throw new InputError(
      `stakers cannot exit before a governance change lands under ${what}: NodeStaking's unbonding delay ` +
        `${seconds(w.unbondingDelay)} is not shorter than voting delay ${seconds(w.votingDelay)} + voting period ` +
        `${seconds(w.votingPeriod)} + timelock delay ${seconds(w.timelockDelay)} = ${seconds(latency)}`,
      {
        details: {
          unbondingDelay: w.unbondingDelay,
          votingDelay: w.votingDelay,
          votingPeriod: w.votingPeriod,
          timelockDelay: w.timelockDelay,
        },
        hint: `shorten the unbonding delay below ${latency} s, or lengthen the voting delay, voting period or timelock delay`,
      },
    );
  }
  return latency - w.unbondingDelay;
}

/** Who holds the two fast roles that are not governance's. */
export interface KeyHolders {
  /** VETO_ROLE on NodeStaking and GUARDIAN_ROLE on ContributorRewards. */
  guardian: string;
  /** UPDATER_ROLE on ContributorRewards. */
  rewardsUpdater: string;
  /** The options that were left out and defaulted to the deployer (local chains only). */
  defaulted: Array<"guardian" | "rewardsUpdater">;
}

const OPTION_OF = { guardian: "--guardian", rewardsUpdater: "--rewards-updater" } as const;

/**
 * The guardian and the rewards updater: given explicitly, or on a local chain (31337/1337) the deployer (and the caller
 * says so). Off local chains a missing one is an InputError naming the option: the deployer's key must not
 * keep a power by default.
 */
export function resolveKeyHolders(
  chainId: bigint,
  deployer: string,
  given: { guardian?: string | undefined; rewardsUpdater?: string | undefined },
): KeyHolders {
  const local = LOCAL_CHAIN_IDS.includes(chainId);
  const missing = (["guardian", "rewardsUpdater"] as const).filter(
    (k) => given[k] === undefined || given[k] === "",
  );
  if (!local && missing.length > 0) {
    throw new InputError(
      `chain ${chainId} is not local: ${missing.map((k) => OPTION_OF[k]).join(" and ")} must be given`,
      {
        details: { chainId, missing: missing.map((k) => OPTION_OF[k]).join(", ") },
        hint: "pass the security council's address (a multisig) as --guardian and the rewards service's as --rewards-updater; only local chains default them to the deployer",
      },
    );
  }
  return {
    guardian: given.guardian || deployer,
    rewardsUpdater: given.rewardsUpdater || deployer,
    defaulted: missing,
  };
}

/** The option's name as a user passes it (for log lines). */
export function optionName(key: keyof typeof OPTION_OF): string {
  return OPTION_OF[key];
}

/** "604800 s (7 d)" / "5400 s (1.5 h)": the exact seconds and a readable size. */
export function seconds(s: bigint): string {
  const n = Number(s);
  const readable =
    n % 86_400 === 0 && n > 0
      ? `${n / 86_400} d`
      : n >= 3_600
        ? `${(n / 3_600).toFixed(1).replace(/\.0$/, "")} h`
        : undefined;
  return readable === undefined ? `${s} s` : `${s} s (${readable})`;
}

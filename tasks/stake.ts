import { task } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import type * as StakingTasks from "../offchain/staking/tasks.js";
import type { TaskEnv } from "../offchain/staking/tasks.js";

import { ensureBuilt } from "./lib.js";

/** Connects to the selected network and runs a task body from offchain/staking/tasks.ts. */
export async function withEnv(
  hre: HardhatRuntimeEnvironment,
  body: (env: TaskEnv, t: typeof StakingTasks) => Promise<string>,
): Promise<void> {
  await ensureBuilt(hre);
  const t = await import("../offchain/staking/tasks.js");
  const { ethers, networkName } = await hre.network.getOrCreate();
  await t.runTask(() => body({ ethers, networkName: t.recordName(networkName) }, t));
}

const from = {
  name: "from",
  description: "Sending account (an address among the network's accounts; default: the first)",
  defaultValue: "",
};

export const stakeTasks = [
  task("opg:stake:register", "Register a node: stake OPG as its operator")
    .addOption({ name: "node", description: "Node id (an address you choose)", defaultValue: "" })
    .addOption({ name: "role", description: "inference (GPU) or verifier (TEE)", defaultValue: "" })
    .addOption({
      name: "signer",
      description: "The node's hot signer key (address)",
      defaultValue: "",
    })
    .addOption({
      name: "amount",
      description: "Stake in OPG, at least the role's minimum",
      defaultValue: "",
    })
    .addOption({ name: "metadata", description: "The node's endpoint URI", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeRegister(env, args)))
    .build(),
  task("opg:stake:increase", "Add OPG to a node's active stake")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption({ name: "amount", description: "OPG to add", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeIncrease(env, args)))
    .build(),
  task("opg:stake:unbond", "Start unbonding part of a node's stake (withdrawable after the delay)")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption({ name: "amount", description: "OPG to unbond", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeUnbond(env, args)))
    .build(),
  task("opg:stake:withdraw", "Withdraw a node's matured unbonding entries to its operator")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeWithdraw(env, args)))
    .build(),
  task("opg:stake:heartbeat", "Send a node's heartbeat (from its signer key)")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeHeartbeat(env, args)))
    .build(),
  task(
    "opg:stake:rotate-signer",
    "Make a new key the node's signer (the old one stays bound to the node for evidence)",
  )
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption({
      name: "signer",
      description: "The new signer key (address), never used before",
      defaultValue: "",
    })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeRotateSigner(env, args)))
    .build(),
  task("opg:stake:set-payee", "Send the node's fees to another address (zero: the operator)")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption({ name: "payee", description: "Address paid the node's fees", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeSetPayee(env, args)))
    .build(),
  task("opg:stake:unjail", "Unjail a node once its cool-down has passed")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeUnjail(env, args)))
    .build(),
  task("opg:stake:exit", "Retire a node: all its active stake starts unbonding")
    .addOption({ name: "node", description: "Node id", defaultValue: "" })
    .addOption(from)
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeExit(env, args)))
    .build(),
  task("opg:stake:status", "Table of nodes, stakes, unbonding entries and jail state")
    .addOption({ name: "node", description: "Only this node", defaultValue: "" })
    .setInlineAction((args, hre) => withEnv(hre, (env, t) => t.stakeStatus(env, args)))
    .build(),
];

import type { TaskDefinition } from "hardhat/types/tasks";

import { deployTasks } from "./deploy.js";
import { governanceTasks } from "./governance.js";
import { rewardsTasks } from "./rewards.js";
import { stakeTasks } from "./stake.js";
import { teeTasks } from "./tee.js";
import { vestingTasks } from "./vesting.js";

// Each domain registers its tasks in its own file; this list is what hardhat.config.ts loads.
export const opgTasks: TaskDefinition[] = [
  ...deployTasks,
  ...vestingTasks,
  ...stakeTasks,
  ...teeTasks,
  ...rewardsTasks,
  ...governanceTasks,
];

import type { TaskDefinition } from "hardhat/types/tasks";

import { stakeTasks } from "./stake.js";
import { teeTasks } from "./tee.js";

// Each domain registers its tasks in its own file; this list is what hardhat.config.ts loads.
export const opgTasks: TaskDefinition[] = [...stakeTasks, ...teeTasks];

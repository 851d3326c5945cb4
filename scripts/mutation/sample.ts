// The fixed sample `.ci/run` runs (npm run test:mutation:sample): Solidity mutants that the full
// run found killed, by id (`<file>:<line>:<col>:<operator>`, see ./operators.ts). The sample fails
// when one of them survives, and also when one is no longer generated (the source moved: pick
// again from reports/mutation-sol.json after `npm run test:mutation:sol`).
export const SOL_SAMPLE: string[] = [
  "contracts/token/OPGToken.sol:25:13:drop-revert", // genesis guard dropped
  "contracts/token/OPGToken.sol:25:44:relational", // supply == 0  ->  supply != 0
  "contracts/token/OPGToken.sol:26:9:delete-assignment", // INITIAL_SUPPLY never set
  "contracts/libraries/VestingMath.sol:28:32:arithmetic", // cliffAmount + ...  ->  cliffAmount - ...
];

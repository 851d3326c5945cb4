/**
 * The deployment record the tasks read: deployments/<network>/addresses.json, a flat JSON object
 * name -> address, written by the deploy (offchain/chain/deployment.ts owns the format).
 */
export type { Addresses } from "../chain/deployment.js";
export { addressesPath, readAddresses, requireAddress } from "../chain/deployment.js";

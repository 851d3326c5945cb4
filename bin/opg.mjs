#!/usr/bin/env node
// The `opg` command: the off-chain side's CLI (TypeScript, loaded through tsx).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../offchain/cli/index.ts");
process.exitCode = await main(process.argv);

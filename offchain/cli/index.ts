import { Command, CommanderError } from "commander";

import { BaseError } from "../common/errors.js";

/**
 * Each domain adds its subcommands in its own module (`offchain/cli/commands/*.ts`) and is listed
 * here. A command action throws a `BaseError` for anything the user should fix; `main` prints it
 * and returns its exit code.
 */
type Register = (program: Command) => void;

const registrations: Array<() => Promise<{ register: Register }>> = [
  () => import("./commands/tee.js"),
  () => import("./commands/enclave.js"),
  () => import("./commands/attester.js"),
  () => import("./commands/merkle.js"),
  () => import("./commands/receipt.js"),
  () => import("./commands/rewards.js"),
  () => import("./commands/relayer.js"),
  () => import("./commands/explorer.js"),
  () => import("./commands/evidence.js"),
  () => import("./commands/node.js"),
  () => import("./commands/model.js"),
];

export async function main(argv: string[]): Promise<number> {
  const program = new Command("opg")
    .description(
      "OPG protocol: off-chain tools (inference, enclave, relayer, rewards, verification)",
    )
    .exitOverride()
    .showHelpAfterError();
  for (const load of registrations) (await load()).register(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof BaseError) {
      console.error(error.format());
      return error.exitCode;
    }
    console.error(error);
    return 1;
  }
}

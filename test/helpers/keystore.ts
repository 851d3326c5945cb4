/**
 * Hardhat keystores made by Hardhat itself: `npx hardhat keystore set NAME` run in a child process
 * whose config folder is a temporary one, its prompts (password, confirmation, secret) answered on
 * stdin. The user's own keystore is never touched.
 */
import { spawn } from "node:child_process";
import path from "node:path";

import { defaultKeystorePath } from "../../offchain/common/hardhat-keystore.js";
import { ROOT } from "./processes.js";

const HARDHAT_CLI = path.join(ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");

/** The environment that points Hardhat's global config folder (and so its keystore) at `home`. */
export function keystoreEnv(home: string): NodeJS.ProcessEnv {
  return { XDG_CONFIG_HOME: home, HOME: home, APPDATA: home };
}

/** Where `hardhatKeystoreSet(home, …)` writes: Hardhat's default keystore path under `home`. */
export function keystorePathIn(home: string): string {
  return defaultKeystorePath(keystoreEnv(home));
}

/** `npx hardhat keystore set --force <name>` with `value`, creating the keystore with `password` if new. */
export async function hardhatKeystoreSet(
  home: string,
  password: string,
  name: string,
  value: string,
): Promise<void> {
  const child = spawn(process.execPath, [HARDHAT_CLI, "keystore", "set", "--force", name], {
    cwd: ROOT,
    env: { ...process.env, ...keystoreEnv(home) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let pending = "";
  const answer = (text: string): void => {
    pending += text;
    // Each prompt ends with ": " and waits for one line: the password (twice when the keystore is
    // new), then the secret.
    if (!/: $/.test(pending)) return;
    const secret = /secret/i.test(pending);
    pending = "";
    child.stdin.write(`${secret ? value : password}\n`);
    if (secret) child.stdin.end();
  };
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString();
    answer(d.toString());
  });
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  if (code !== 0 || !output.includes(`Key "${name}" set`)) {
    throw new Error(`hardhat keystore set ${name} failed (exit ${code}):\n${output}`);
  }
}

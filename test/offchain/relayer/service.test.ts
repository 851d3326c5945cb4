/**
 * RelayerService.create refuses to start, naming the problem, when the chain it is pointed at is
 * unreachable or is another chain (asked of the RPC itself, not read back from the config).
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { pino } from "pino";

import { InputError } from "../../../offchain/common/errors.js";
import { parseRelayerConfig } from "../../../offchain/relayer/config.js";
import { RelayerService } from "../../../offchain/relayer/service.js";
import { startHardhatNode } from "../../helpers/processes.js";

const LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

function config(rpcUrl: string, chainId: number) {
  return parseRelayerConfig({
    chain: { rpcUrl, chainId, ledger: LEDGER, deployBlock: 0 },
    node: { address: Wallet.createRandom().address },
    enclave: { url: "http://127.0.0.1:1" },
    models: { dir: "models" },
    store: { path: ":memory:" },
  });
}

const secrets = {
  nodeSigner: Wallet.createRandom() as unknown as Wallet,
  txSigner: Wallet.createRandom() as unknown as Wallet,
};
const silent = pino({ enabled: false });

async function refusal(rpcUrl: string, chainId: number): Promise<InputError> {
  try {
    await RelayerService.create(config(rpcUrl, chainId), secrets, silent);
  } catch (error) {
    expect(error).to.be.instanceOf(InputError);
    return error as InputError;
  }
  return expect.fail("RelayerService.create should have refused");
}

describe("offchain/relayer/service (start-up refusals)", () => {
  it("names an unreachable RPC", async () => {
    const e = await refusal("http://127.0.0.1:1", 31337);
    expect(e.message).to.equal("the chain RPC at http://127.0.0.1:1 is unreachable");
    expect(e.details).to.deep.equal({ rpcUrl: "http://127.0.0.1:1" });
  });

  it("refuses an RPC that serves another chain than the configured one", async () => {
    const node = await startHardhatNode();
    try {
      const e = await refusal(node.url, 1);
      expect(e.message).to.equal("the RPC's chain id is not the configured one");
      expect(e.details).to.deep.equal({ configured: 1n, rpc: 31337n });
    } finally {
      await node.stop();
    }
  });
});

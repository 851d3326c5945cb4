/**
 * `opg node run` as node operators run it, on a `hardhat node`: one keeper for the GPU node and one
 * for the TEE node (with its enclave), as separate processes. Time passes by hand (evm_increaseTime):
 * the keepers heartbeat before anyone may jail the nodes, renew the enclave's registration with a
 * fresh attestation before it lapses, register a restarted enclave's new key, and say on /readyz,
 * /metrics and in a log line when they cannot.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import type { HardhatNode } from "../helpers/processes.js";
import { freePort, rpc, startHardhatNode } from "../helpers/processes.js";
import {
  deploySystem,
  getJson,
  startEnclave,
  startOpg,
  stopProc,
  until,
  type Proc,
  type System,
} from "./relayer-system.js";

describe("e2e: opg node run keeps the GPU and TEE nodes alive", function () {
  this.timeout(300_000);
  let node: HardhatNode;
  let system: System;
  let enclave: Awaited<ReturnType<typeof startEnclave>>;
  const running: Proc[] = [];

  before(async () => {
    node = await startHardhatNode();
    system = await deploySystem(node.url);
    enclave = await startEnclave(system, node.url);
  });
  after(async () => {
    for (const p of running) await stopProc(p, "SIGKILL");
    if (enclave !== undefined) await stopProc(enclave, "SIGKILL");
    await system?.close();
    await node?.stop();
  });

  async function keeper(
    nodeAddress: string,
    signerKey: string,
    enclaveUrl?: string,
  ): Promise<Proc & { url: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), "opg-node-"));
    const file = path.join(dir, "node.json");
    await writeFile(
      file,
      JSON.stringify({
        chain: {
          rpcUrl: node.url,
          chainId: 31337,
          ledger: await system.ledger.getAddress(),
          pollIntervalMs: 200,
        },
        node: { address: nodeAddress },
        ...(enclaveUrl !== undefined ? { enclave: { url: enclaveUrl } } : {}),
        store: { path: path.join(dir, "node.db") },
        api: { port: await freePort() },
        log: { level: "info" },
      }),
    );
    const proc = await startOpg(["node", "run", "--config", file], {
      OPG_NODE_SIGNER_KEY: signerKey,
    });
    running.push(proc);
    return { ...proc, url: String(proc.line.url) };
  }

  const travel = async (seconds: number): Promise<void> => {
    await rpc(node.url, "evm_increaseTime", [seconds]);
    await rpc(node.url, "evm_mine");
  };
  const lastHeartbeat = async (n: string): Promise<bigint> =>
    (await system.staking.getNode(n)).lastHeartbeat;
  const expiry = async (key: string): Promise<bigint> =>
    (await system.tee.getEnclave(key)).expiresAt;

  it("heartbeats both nodes and renews the enclave before anyone may jail them or it lapses; registers a restarted enclave's new key", async () => {
    const gpu = await keeper(system.gpuNode, system.nodeSigner.privateKey);
    const tee = await keeper(system.teeNode, system.teeSigner.privateKey, enclave.url);
    await until("both keepers ready", async () => {
      const [a, b] = await Promise.all([
        getJson(`${gpu.url}/readyz`),
        getJson(`${tee.url}/readyz`),
      ]);
      return a.status === 200 && b.status === 200 ? true : null;
    });

    // 50 minutes pass (the heartbeat timeout is an hour): both heartbeat, so neither can be jailed.
    const timeout = Number((await system.staking.params()).heartbeatTimeout);
    const before = [await lastHeartbeat(system.gpuNode), await lastHeartbeat(system.teeNode)];
    await travel(Math.floor(timeout * 0.85));
    await until("heartbeats of both nodes", async () =>
      (await lastHeartbeat(system.gpuNode)) > before[0]! &&
      (await lastHeartbeat(system.teeNode)) > before[1]!
        ? true
        : null,
    );
    await travel(Math.floor(timeout * 0.3));
    for (const n of [system.gpuNode, system.teeNode]) {
      const refused = await system.staking
        .connect(system.admin)
        .jailInactive.staticCall(n)
        .then(() => "jailed (!)")
        .catch((e: { data?: string }) => system.staking.interface.parseError(e.data ?? "0x")?.name);
      expect(refused).to.equal("StakingHeartbeatNotMissed");
    }

    // 17 hours pass (the registration lasts a day): the keeper renews it with a fresh attestation.
    const ttl = Number(await system.tee.registrationTtl());
    const expiresAt = await expiry(enclave.address);
    await travel(Math.floor(ttl * 0.7));
    await until("the renewal", async () =>
      (await expiry(enclave.address)) > expiresAt ? true : null,
    );
    const renewals = await system.tee.queryFilter(
      system.tee.filters.EnclaveRegistered(enclave.address),
    );
    expect(renewals.length, "registration + renewal").to.be.greaterThanOrEqual(2);
    expect(await system.tee.isActiveEnclave(enclave.address)).to.equal(true);

    // The enclave restarts: a new key, which the keeper registers with its own attestation.
    await stopProc(enclave);
    const ready = await until("readyz names the missing enclave", async () => {
      const r = await getJson(`${tee.url}/readyz`);
      return r.status === 503 && /the enclave does not answer/.test(String(r.json.reason))
        ? r
        : null;
    });
    expect(ready.json.ready).to.equal(false);
    const metrics = await (await fetch(`${tee.url}/metrics`)).text();
    expect(metrics).to.match(/opg_node_failures_total\{action="renew"\} [1-9]/);
    expect(tee.output()).to.match(/cannot renew: the enclave does not answer/);
    // On the same port: the keeper's config names the enclave's URL.
    const port = new URL(enclave.url).port;
    const restarted = await startEnclave(system, node.url, ["--port", port], { register: false });
    enclave = restarted;
    await until("the new key registered by the keeper", async () =>
      (await system.tee.isActiveEnclave(restarted.address)) ? true : null,
    );
    const record = await system.tee.getEnclave(restarted.address);
    expect(record.node).to.equal(system.teeNode);
    await until("keeper ready again", async () =>
      (await getJson(`${tee.url}/readyz`)).status === 200 ? true : null,
    );
    await stopProc(gpu);
    await stopProc(tee);
  });

  it("says why on /readyz, in /metrics and in its log when it cannot heartbeat: a key that is not the node's signer", async () => {
    const gpu = await keeper(system.gpuNode, `0x${"11".repeat(32)}`);
    const timeout = Number((await system.staking.params()).heartbeatTimeout);
    await travel(timeout + 60);
    const ready = await until("readyz says the heartbeat is overdue", async () => {
      const r = await getJson(`${gpu.url}/readyz`);
      return r.status === 503 ? r : null;
    });
    expect(String(ready.json.reason)).to.match(/heartbeat overdue/);
    expect(String(ready.json.reason)).to.match(/heartbeat: StakingNotSigner/);
    const metrics = await (await fetch(`${gpu.url}/metrics`)).text();
    expect(metrics).to.match(/opg_node_failures_total\{action="heartbeat"\} [1-9]/);
    expect(metrics).to.match(/opg_node_at_risk 1/);
    expect(gpu.output()).to.match(/cannot heartbeat: StakingNotSigner/);
    await stopProc(gpu);
  });
});

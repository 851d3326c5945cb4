/**
 * Deploying somewhere real, as a protocol engineer, node operator and attesters do it (issue 14): anvil with
 * chain id 4242 (not local to the protocol, so no development verifier), driven through the CLIs.
 *
 *   opg:deploy refuses without a verifier before sending anything; --dry-run prints the plan and sends
 *   nothing; the deploy with --verifier quorum --attesters a,b,c --threshold 2 puts QuorumAttestationVerifier
 *   behind TeeRegistry. Governance approves the enclave image; the development enclave (its documents are
 *   Nitro-format under a development root, which the attesters are given with --root, as AWS's root is
 *   their default) attests its key; two attesters check the document with `opg attester sign`; the operator
 *   registers the enclave with `opg:tee:register --attester-signatures`; the relayer anchors a batch and
 *   `opg receipt verify` checks a receipt against the chain; a renewal goes through the attesters again.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { JsonRpcProvider, NonceManager, Wallet } from "ethers";

import {
  ModelRegistry__factory,
  NodeStaking__factory,
  OPGGovernor__factory,
  OPGTimelock__factory,
  OPGToken__factory,
  TeeRegistry__factory,
} from "../../types/ethers-contracts/index.js";
import { delegateVotes, governanceOf, passProposal } from "../../offchain/governance/proposals.js";
import * as actions from "../../offchain/staking/actions.js";
import { roleAccounts } from "../helpers/accounts.js";
import type { HardhatNode } from "../helpers/processes.js";
import { ANVIL_BIN, ROOT, freePort, hardhat, rpc, run, startAnvil } from "../helpers/processes.js";
import { RISK_MLP } from "../helpers/protocol.js";
import {
  account,
  getJson,
  postJson,
  riskInput,
  startOpg,
  stopProc,
  type Proc,
} from "./relayer-system.js";

const CHAIN_ID = 4242;
const PLAN = "deployments/localhost/vesting-plan.json";
const INFERENCE = 1;
const VERIFIER = 2;

describe("e2e: deploy to a chain that is not local (anvil, chain 4242) with the quorum verifier", function () {
  this.timeout(300_000);
  let node: HardhatNode;
  let provider: JsonRpcProvider;
  let tmp: string;
  const procs: Proc[] = [];
  const recordDir = path.join(ROOT, "deployments", "e2e");
  const attesters = [Wallet.createRandom(), Wallet.createRandom(), Wallet.createRandom()];
  const guardian = account(9).address;
  const updater = account(8).address;
  /** Operates the TEE node: one of anvil's accounts, so the Hardhat task can send as it. */
  const teeOperator = account(7);
  const env = () => ({ OPG_E2E_RPC_URL: node.url });
  /**
   * Waits in real time for `timestamp`, then mines a block (anvil stamps it with the wall clock). The pause
   * after it: ethers answers a repeated getBlock("latest") within 250 ms from its cache.
   */
  const waitUntil = async (timestamp: bigint): Promise<void> => {
    while (BigInt(Math.floor(Date.now() / 1000)) < timestamp)
      await new Promise((r) => setTimeout(r, 100));
    await rpc(node.url, "evm_mine");
    await new Promise((r) => setTimeout(r, 300));
  };
  const deployArgs = [
    "opg:deploy",
    "--network",
    "e2e",
    "--plan",
    PLAN,
    "--guardian",
    guardian,
    "--rewards-updater",
    updater,
    // Short governance, so the test passes a proposal in seconds of real time (the chain keeps the
    // wall clock, as a real one does: receipts and registrations are checked against each other's times).
    ...["--voting-delay", "1", "--voting-period", "4", "--timelock-delay", "2"],
    ...["--unbonding-delay", "5"],
  ];
  const quorumArgs = [
    "--verifier",
    "quorum",
    "--attesters",
    attesters.map((a) => a.address).join(","),
    "--threshold",
    "2",
    "--attestation-max-age",
    "3600",
  ];

  before(async function () {
    if (!existsSync(ANVIL_BIN)) {
      console.log(
        `    (skipped: ${ANVIL_BIN} is missing; the optional dependency installs on linux-x64)`,
      );
      this.skip();
    }
    await rm(recordDir, { recursive: true, force: true });
    tmp = await mkdtemp(path.join(tmpdir(), "opg-deploy-quorum-"));
    node = await startAnvil(CHAIN_ID);
    provider = new JsonRpcProvider(node.url, undefined, {
      staticNetwork: true,
      pollingInterval: 50,
    });
  });
  after(async () => {
    for (const p of procs.reverse()) await stopProc(p, "SIGKILL");
    provider?.destroy();
    await node?.stop();
    await rm(recordDir, { recursive: true, force: true });
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  });

  it("refuses before the first transaction, prints the plan on --dry-run, then deploys with the quorum verifier", async () => {
    const deployer = account(0).address;
    const refused = await hardhat(deployArgs, env());
    expect(refused.code, refused.stdout + refused.stderr).to.equal(2);
    expect(refused.stderr).to.contain(
      "DeployPreflightError: chain 4242 is not local: deploy the quorum verifier with its attesters",
    );
    expect(refused.stderr).to.contain("problem: verifier");

    const noPlan = await hardhat(
      [
        ...deployArgs.map((a) => (a === PLAN ? "deployments/e2e/missing-plan.json" : a)),
        ...quorumArgs,
      ],
      env(),
    );
    expect(noPlan.code, noPlan.stdout + noPlan.stderr).to.equal(2);
    expect(noPlan.stderr).to.match(
      /DeployPreflightError: cannot read the vesting plan .*missing-plan\.json/,
    );
    expect(noPlan.stderr).to.contain("problem: plan");

    const dry = await hardhat([...deployArgs, ...quorumArgs, "--dry-run"], env());
    expect(dry.code, dry.stdout + dry.stderr).to.equal(0);
    expect(dry.stdout).to.contain("Preflight OK for e2e (chain 4242, not local)");
    expect(dry.stdout).to.contain(
      `deploy QuorumAttestationVerifier  attesters ${attesters.map((a) => a.address).join(", ")}; threshold 2 of 3`,
    );
    expect(dry.stdout).to.contain(
      "deploy TeeRegistry  staking NodeStaking, verifier QuorumAttestationVerifier",
    );
    expect(dry.stdout).to.contain("Dry run: nothing was sent.");
    expect(await provider.getTransactionCount(deployer)).to.equal(0);
    expect(existsSync(path.join(recordDir, "deployment.json"))).to.equal(false);

    const deployed = await hardhat([...deployArgs, ...quorumArgs], env());
    expect(deployed.code, deployed.stdout + deployed.stderr).to.equal(0);
    expect(deployed.stdout).to.match(
      /TEE attestations: QuorumAttestationVerifier 0x[0-9a-fA-F]{40}/,
    );
    const record = JSON.parse(await readFile(path.join(recordDir, "deployment.json"), "utf8")) as {
      chainId: string;
      contracts: Record<string, { address: string }>;
    };
    expect(record.chainId).to.equal("4242");
    expect(record.contracts.QuorumAttestationVerifier).to.not.equal(undefined);
    expect(record.contracts.DevAttestationVerifier).to.equal(undefined);
    const audit = await hardhat(["opg:governance:audit", "--network", "e2e"], env());
    expect(audit.code, audit.stdout + audit.stderr).to.equal(0);
    expect(audit.stdout).to.contain("AUDIT OK");
  });

  it("registers an enclave through two attesters' signatures, anchors a batch and verifies a receipt", async () => {
    const addresses = JSON.parse(
      await readFile(path.join(recordDir, "addresses.json"), "utf8"),
    ) as Record<string, string>;
    const admin = new NonceManager(account(0).connect(provider));
    const token = OPGToken__factory.connect(addresses.OPGToken!, admin);
    const staking = NodeStaking__factory.connect(addresses.NodeStaking!, admin);
    const tee = TeeRegistry__factory.connect(addresses.TeeRegistry!, admin);
    const registry = ModelRegistry__factory.connect(addresses.ModelRegistry!, admin);
    expect(await tee.verifier()).to.equal(addresses.QuorumAttestationVerifier);

    // Two nodes staked at their role's minimum: a GPU node and the TEE node (operator: anvil account 7).
    const { gpuOperator } = await roleAccounts(admin, provider, ["gpuOperator"]);
    const params = await staking.params();
    const nodeSigner = Wallet.createRandom();
    const gpuNode = Wallet.createRandom().address;
    const teeNode = Wallet.createRandom().address;
    const operator = teeOperator.connect(provider);
    await (await token.transfer(gpuOperator.address, params.minStakeInference)).wait();
    await (await token.transfer(operator.address, params.minStakeVerifier)).wait();
    const h = { token, staking };
    await actions.registerNode(h, new NonceManager(gpuOperator), {
      node: gpuNode,
      role: INFERENCE,
      signer: nodeSigner.address,
      amount: params.minStakeInference,
      metadataURI: "https://gpu.opg.test",
    });
    await actions.registerNode(h, new NonceManager(operator), {
      node: teeNode,
      role: VERIFIER,
      signer: Wallet.createRandom().address,
      amount: params.minStakeVerifier,
      metadataURI: "https://tee.opg.test",
    });
    await (
      await registry.registerModel(
        RISK_MLP.modelId,
        "ipfs://m",
        RISK_MLP.modelId,
        [gpuOperator.address],
        [10_000],
      )
    ).wait();

    // The development enclave, under a development root kept in a file.
    const enclave = await startOpg([
      ...["enclave", "start", "--port", "0", "--models", "models"],
      ...["--chain-id", String(CHAIN_ID), "--ledger", addresses.InferenceLedger!],
      ...["--node", gpuNode, "--rpc", node.url, "--dev-root", path.join(tmp, "dev-root.pem")],
    ]);
    procs.push(enclave);
    const enclaveUrl = String(enclave.line.url);
    const opg = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, ["bin/opg.mjs", ...args], extra, 60_000);
    const doc = path.join(tmp, "attestation.cbor");
    const fetched = await opg(["enclave", "attestation", "--url", enclaveUrl, "--out", doc]);
    expect(fetched.code, fetched.stderr).to.equal(0);
    const { enclave: enclaveKey, measurement } = JSON.parse(fetched.stdout) as {
      enclave: string;
      measurement: string;
    };
    const rootPem = path.join(tmp, "enclave-root.pem");
    expect(
      (await opg(["enclave", "dev-root", "--url", enclaveUrl, "--out", rootPem])).code,
    ).to.equal(0);

    // Governance approves the enclave image (a governor proposal through the timelock).
    const handles = governanceOf({
      governor: OPGGovernor__factory.connect(addresses.OPGGovernor!, admin),
      timelock: OPGTimelock__factory.connect(addresses.OPGTimelock!, admin),
      token,
      addresses,
    });
    // Votes count from the second after delegation (the governor's clock is the timestamp; anvil mines
    // several blocks in one second).
    await delegateVotes(token, admin);
    await waitUntil(BigInt(Math.floor(Date.now() / 1000)) + 2n);
    await passProposal(
      handles,
      { proposer: admin, voters: [admin] },
      {
        calls: [
          {
            target: addresses.TeeRegistry!,
            value: 0n,
            data: tee.interface.encodeFunctionData("approveMeasurement", [measurement, "dev"]),
          },
        ],
        description: "approve the e2e enclave image",
      },
      waitUntil,
    );
    expect(await tee.isMeasurementApproved(measurement)).to.equal(true);

    // Each attester checks the document itself against the chain and signs; the third is not needed.
    const sign = (i: number) =>
      opg(
        [
          ...["attester", "sign", "--attestation", doc, "--node", teeNode, "--enclave", enclaveKey],
          ...["--rpc", node.url, "--deployment", recordDir, "--root", rootPem],
          ...["--out", path.join(tmp, `attester-${i}.json`)],
        ],
        { OPG_ATTESTER_KEY: attesters[i]!.privateKey },
      );
    // An attester without the development root refuses (AWS's root is the default).
    const aws = await opg(
      [
        "attester",
        "sign",
        "--attestation",
        doc,
        "--node",
        teeNode,
        "--rpc",
        node.url,
        "--deployment",
        recordDir,
      ],
      { OPG_ATTESTER_KEY: attesters[2]!.privateKey },
    );
    expect(aws.code).to.equal(1);
    expect(aws.stderr).to.contain("refused to attest (root)");
    for (const i of [0, 1]) {
      const signed = await sign(i);
      expect(signed.code, signed.stderr).to.equal(0);
    }
    // A key that is not an attester can sign a file; the task refuses it before sending anything.
    const stranger = Wallet.createRandom();
    const strangerFile = path.join(tmp, "stranger.json");
    const byStranger = await opg(
      [
        ...["attester", "sign", "--attestation", doc, "--node", teeNode, "--enclave", enclaveKey],
        ...["--rpc", node.url, "--deployment", recordDir, "--root", rootPem, "--out", strangerFile],
      ],
      { OPG_ATTESTER_KEY: stranger.privateKey },
    );
    expect(byStranger.code, byStranger.stderr).to.equal(0);
    const notAttester = await hardhat(
      [
        ...["opg:tee:register", "--network", "e2e", "--from", operator.address],
        ...["--attester-signatures", `${path.join(tmp, "attester-0.json")},${strangerFile}`],
      ],
      env(),
    );
    expect(notAttester.code).to.equal(2);
    expect(notAttester.stderr).to.contain(
      `${stranger.address} is not an attester of the quorum verifier`,
    );
    // One signature is below the threshold: the task says so before sending anything.
    const one = await hardhat(
      [
        ...["opg:tee:register", "--network", "e2e", "--from", operator.address],
        ...["--attester-signatures", path.join(tmp, "attester-0.json")],
      ],
      env(),
    );
    expect(one.code).to.equal(2);
    expect(one.stderr).to.contain("1 attester signature(s) given; the quorum verifier needs 2");
    const registered = await hardhat(
      [
        ...["opg:tee:register", "--network", "e2e", "--from", operator.address],
        ...[
          "--attester-signatures",
          `${path.join(tmp, "attester-1.json")},${path.join(tmp, "attester-0.json")}`,
        ],
      ],
      env(),
    );
    expect(registered.code, registered.stdout + registered.stderr).to.equal(0);
    expect(registered.stdout).to.contain(`registered enclave ${enclaveKey} for ${teeNode}`);
    expect(await tee.isActiveEnclave(enclaveKey)).to.equal(true);

    // The relayer anchors a batch; the receipt verifies against the chain.
    const port = await freePort();
    const config = {
      chain: {
        rpcUrl: node.url,
        chainId: CHAIN_ID,
        ledger: addresses.InferenceLedger,
        deployBlock: 0,
        pollIntervalMs: 50,
      },
      node: { address: gpuNode },
      models: { dir: path.join(ROOT, "models") },
      api: { port },
      batch: { maxSize: 256, maxAgeMs: 200 },
      listener: { confirmations: 1 },
      store: { path: path.join(tmp, "relayer.db") },
      log: { level: "warn" },
      enclave: { url: enclaveUrl, attestation: { root: rootPem } },
    };
    const configFile = path.join(tmp, "relayer.json");
    await writeFile(configFile, JSON.stringify(config));
    const relayer = await startOpg(["relayer", "start", "--config", configFile], {
      OPG_NODE_SIGNER_KEY: nodeSigner.privateKey,
      OPG_RELAYER_TX_KEY: account(1).privateKey,
    });
    procs.push(relayer);
    const relayerUrl = String(relayer.line.url);
    const res = await postJson(`${relayerUrl}/v1/inferences`, {
      modelId: RISK_MLP.modelId,
      inputs: riskInput(1),
    });
    expect(res.status, JSON.stringify(res.json)).to.equal(200);
    const id = String(res.json.requestId);
    const deadline = Date.now() + 30_000;
    let receipt: Record<string, unknown> = {};
    for (;;) {
      receipt = (await getJson(`${relayerUrl}/v1/receipts/${id}`)).json;
      if (receipt.status === "anchored") break;
      if (Date.now() > deadline)
        throw new Error(
          `not anchored: ${JSON.stringify(receipt)}\n${relayer.output().slice(-4000)}`,
        );
      await rpc(node.url, "evm_mine");
      await new Promise((r) => setTimeout(r, 200));
    }
    const bundleFile = path.join(tmp, "receipt.json");
    await writeFile(bundleFile, JSON.stringify(receipt.bundle));
    const verify = await opg(["receipt", "verify", bundleFile, "--rpc", node.url]);
    expect(verify.code, verify.stdout + verify.stderr).to.equal(0);
    expect(verify.stdout).to.not.match(/FAIL/);

    // Renewal takes a fresh document, checked and signed again by the attesters.
    const fresh = path.join(tmp, "attestation-2.cbor");
    expect(
      (await opg(["enclave", "attestation", "--url", enclaveUrl, "--out", fresh])).code,
    ).to.equal(0);
    const renewFiles: string[] = [];
    for (const i of [1, 2]) {
      const out = path.join(tmp, `renew-${i}.json`);
      const signed = await opg(
        [
          ...[
            "attester",
            "sign",
            "--attestation",
            fresh,
            "--node",
            teeNode,
            "--enclave",
            enclaveKey,
          ],
          ...["--rpc", node.url, "--deployment", recordDir, "--root", rootPem, "--out", out],
        ],
        { OPG_ATTESTER_KEY: attesters[i]!.privateKey },
      );
      expect(signed.code, signed.stderr).to.equal(0);
      renewFiles.push(out);
    }
    const renewed = await hardhat(
      [
        ...["opg:tee:renew", "--network", "e2e", "--from", operator.address],
        ...["--enclave", enclaveKey, "--attester-signatures", renewFiles.join(",")],
      ],
      env(),
    );
    expect(renewed.code, renewed.stdout + renewed.stderr).to.equal(0);
    expect(renewed.stdout).to.contain(`renewed enclave ${enclaveKey} with a fresh attestation`);
  });
});

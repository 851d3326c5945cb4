/**
 * The transparency explorer in a real browser (Debian's chromium, driven by playwright-core) against a
 * chain seeded by the demo flow: the calendar shows the 8.08M tranche on its date, the node table matches
 * the chain, a valid receipt verifies and an altered one fails with the failing step named, the rewards
 * root matches its recomputation. Screenshots of each view go to reports/explorer/.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { id } from "ethers";
import type { BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";

import { formatReceiptBundle } from "../../offchain/chain/bundle.js";
import { startExplorer } from "../../offchain/explorer/server.js";
import { computeRewards } from "../../offchain/rewards/compute.js";
import type { RunningExplorer } from "../../offchain/explorer/server.js";
import { collectNodeStatuses, nodeState } from "../../offchain/staking/nodes.js";
import { formatOpg } from "../../offchain/staking/units.js";
import { ROOT } from "../helpers/processes.js";

import { CHROMIUM, CHROMIUM_ARGS, DIST, ensureBuilt } from "./browser.js";
import type { SeededChain } from "./seed.js";
import { seedDemoChain } from "./seed.js";

const SHOTS = path.join(ROOT, "reports", "explorer");

describe("explorer: the transparency pages in headless chromium", function () {
  this.timeout(180_000);
  let seeded: SeededChain;
  let explorer: RunningExplorer;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let relayer: Server;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(
        `    skipped: ${CHROMIUM} is not installed (apt-get install chromium) — the explorer's browser tests need it`,
      );
      this.skip();
    }
    ensureBuilt();
    seeded = await seedDemoChain();
    // A stand-in for the relayer's GET /v1/receipts/:id (offchain/relayer/api.ts): the anchored bundle.
    relayer = createServer((req, res) => {
      const known = req.url === `/v1/receipts/${seeded.bundle.receipt.requestId}`;
      res.writeHead(known ? 200 : 404, { "content-type": "application/json" });
      res.end(
        known
          ? `{"status":"anchored","bundle":${formatReceiptBundle(seeded.bundle)}}`
          : JSON.stringify({ error: "NotFound", message: `no receipt for ${req.url}` }),
      );
    });
    await new Promise<void>((resolve) => relayer.listen(0, "127.0.0.1", resolve));
    explorer = await startExplorer({
      relayerUrl: `http://127.0.0.1:${(relayer.address() as AddressInfo).port}`,
      provider: seeded.provider,
      deploymentDir: seeded.deploymentDir,
      distDir: DIST,
      // Far below the chain's length: every view reads its events from block 0, so the page must
      // split its eth_getLogs into ranges the server accepts (explorer/src/chain.ts).
      maxLogBlockRange: 8,
    });
    profile = await mkdtemp(path.join(tmpdir(), "opg-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(explorer.url);
    await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
    expect(errors, "page errors").to.deep.equal([]);
    await mkdir(SHOTS, { recursive: true });
  });

  after(async () => {
    await context?.close();
    await explorer?.close();
    relayer?.close();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  describe("vesting", () => {
    it("shows the 8.08M tranche on its date, and the audit's verdict that the plan hash matches", async () => {
      const tranche = page.locator("[data-testid=tranches] tr", {
        hasText: "2027-06-21T00:00:00Z",
      });
      expect(await tranche.count()).to.equal(1);
      expect(await tranche.innerText()).to.include("8,080,000");
      const verdict = page.locator("#vesting .verdict");
      expect(await verdict.getAttribute("class")).to.include("pass");
      const onChain = await page
        .locator("[data-testid=plan-hash-chain] code")
        .getAttribute("title");
      expect(onChain).to.equal(seeded.system.planHash);
      expect(
        await page.locator("[data-testid=plan-hash-file] code").getAttribute("title"),
      ).to.equal(onChain);
      expect(await page.locator("#vesting .uplot").count()).to.equal(1);
      await page.locator("#vesting").screenshot({ path: path.join(SHOTS, "vesting.png") });
    });
  });

  describe("nodes", () => {
    it("lists every node with the stake, unbonding and state the chain holds, and the slash with its evidence", async () => {
      const statuses = await collectNodeStatuses(seeded.system.staking);
      expect(statuses.length).to.be.greaterThan(1);
      const rows = page.locator("[data-testid=node-table] tbody tr");
      expect(await rows.count()).to.equal(statuses.length);
      const block = await seeded.system.staking.runner!.provider!.getBlock("latest");
      for (const [i, s] of statuses.entries()) {
        const cells = await rows.nth(i).locator("th, td").allInnerTexts();
        expect(await rows.nth(i).locator("th code").getAttribute("title")).to.equal(s.node);
        expect(cells[3]).to.equal(formatOpg(s.active));
        expect(cells[4]).to.satisfy((t: string) => t.startsWith(formatOpg(s.unbonding)));
        expect(cells[5]).to.equal(nodeState(s, BigInt(block!.timestamp)));
      }
      const slash = page.locator("[data-testid=slash-table] tbody tr");
      expect(await slash.count()).to.equal(1);
      const text = await slash.innerText();
      expect(text).to.include("CONTRADICTED_RECEIPT");
      expect(text).to.include("an active enclave re-executed it");
      await page.locator("#nodes").screenshot({ path: path.join(SHOTS, "nodes.png") });
    });
  });

  describe("anchoring", () => {
    it("charts the anchored batch with its receipts and re-execution rate", async () => {
      const rows = page.locator("[data-testid=batch-table] tbody tr");
      expect(await rows.count()).to.equal(1);
      expect(await rows.first().innerText()).to.include(`#${seeded.bundle.batchId}`);
    });

    it("verifies a valid receipt bundle in the browser, every step passing", async () => {
      await page.fill("#verify-input", formatReceiptBundle(seeded.bundle));
      await page.click("#verify-form button[type=submit]");
      await page.waitForSelector("#verify-result:not([data-state=running])", { timeout: 30_000 });
      expect(await page.locator("#verify-result").innerText()).to.include(
        "Receipt verified",
        await page.locator("#verify-result").innerText(),
      );
      expect(await page.locator("#verify-result").getAttribute("data-state")).to.equal("verified");
      const checks = page.locator("[data-testid=checks] li");
      expect(await checks.count()).to.be.greaterThan(5);
      expect(await page.locator("[data-testid=checks] li[data-ok=false]").count()).to.equal(0);
      expect(
        await page.locator("[data-testid=checks] li[data-check='merkle proof']").count(),
      ).to.equal(1);
      await page
        .locator("#anchoring")
        .screenshot({ path: path.join(SHOTS, "anchoring-verified.png") });
    });

    it("fails an altered receipt and names the failing steps (signature, Merkle proof)", async () => {
      const altered = {
        ...seeded.bundle,
        receipt: { ...seeded.bundle.receipt, outputHash: id("a different answer") },
      };
      await page.fill("#verify-input", formatReceiptBundle(altered));
      await page.click("#verify-form button[type=submit]");
      await page.waitForSelector("#verify-result[data-state=failed]", { timeout: 30_000 });
      const failed = await page
        .locator("[data-testid=checks] li[data-ok=false]")
        .evaluateAll((els) => els.map((e) => e.getAttribute("data-check")));
      expect(failed).to.include.members(["receipt signature", "merkle proof", "verifyReceipt"]);
      expect(await page.locator("[data-testid=verify-verdict]").innerText()).to.include(
        "merkle proof",
      );
      await page
        .locator("#anchoring")
        .screenshot({ path: path.join(SHOTS, "anchoring-altered.png") });
    });

    it("looks a receipt up by its id through the relayer passthrough and verifies it", async () => {
      await page.fill("#verify-input", seeded.bundle.receipt.requestId);
      await page.click("#verify-form button[type=submit]");
      await page.waitForSelector("#verify-result:not([data-state=running])", { timeout: 30_000 });
      expect(await page.locator("#verify-result").getAttribute("data-state")).to.equal("verified");
      expect(await page.inputValue("#verify-input")).to.include(
        '"format": "opg-receipt-bundle-v2"',
      );
      await page.fill("#verify-input", id("no such request"));
      await page.click("#verify-form button[type=submit]");
      await page.waitForSelector("#verify-result[data-state=error]", { timeout: 10_000 });
      expect(await page.locator("#verify-result").innerText()).to.include("no receipt for");
    });

    it("reports malformed input by field instead of running checks", async () => {
      await page.fill("#verify-input", '{"format":"opg-receipt-bundle-v2"}');
      await page.click("#verify-form button[type=submit]");
      await page.waitForSelector("#verify-result[data-state=error]", { timeout: 10_000 });
      expect(await page.locator("#verify-result").innerText()).to.include("malformed");
    });
  });

  describe("rewards", () => {
    it("shows the accepted root, its recomputation verdict and a contributor's claimable amount", async () => {
      expect(await page.locator("#rewards .verdict").getAttribute("class")).to.include("pass");
      const roots = page.locator("[data-testid=roots-table] tbody tr", { hasText: "accepted" });
      expect(await roots.count()).to.equal(1);
      await page.fill("#claim-address", seeded.contributor);
      await page.click("#claim-form button[type=submit]");
      const claim = page.locator("[data-testid=claim-table]");
      await claim.waitFor({ timeout: 10_000 });
      const claimed = await seeded.system.rewards.claimed(seeded.contributor);
      expect(claimed).to.be.greaterThan(0n);
      expect(await claim.innerText()).to.include(formatOpg(claimed));
      await page.locator("#rewards").screenshot({ path: path.join(SHOTS, "rewards.png") });

      // The other contributor has not claimed: claimable = its cumulative in the recomputed tree (Node side).
      const { table } = await computeRewards(seeded.rewardsSource, seeded.rewardsEpoch);
      const earned = table.accounts.find((a) => a.account === seeded.unclaimed)?.cumulative ?? 0n;
      expect(earned).to.be.greaterThan(0n);
      await page.fill("#claim-address", seeded.unclaimed);
      await page.click("#claim-form button[type=submit]");
      await page.locator("[data-testid=claim-table]", { hasText: seeded.unclaimed }).waitFor();
      const cells = await page.locator("[data-testid=claim-table] tbody tr").allInnerTexts();
      expect(cells[0]).to.include(formatOpg(earned));
      expect(cells[1]).to.include("\t0");
      expect(cells[2]).to.include(formatOpg(earned));
    });
  });
});

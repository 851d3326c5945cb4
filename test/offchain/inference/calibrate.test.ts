/**
 * Calibration and the model hub's local half: `opg model calibrate`, `opg model check` and
 * `opg model add` as real processes on real models. The GELU model (scripts/models/generate.ts
 * geluModel) diverges between graph optimisation levels (ONNX Runtime fuses its ops into one Gelu
 * kernel from "extended" on), so there is a divergence to measure; the shipped models do not.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { keccak256 } from "ethers";

import { geluModel } from "../../../scripts/models/generate.js";
import {
  calibrate,
  calibrationConfigs,
  checkTolerances,
  cudaAvailability,
  generateSamples,
  proposeTolerances,
  readModelFolder,
  withTolerances,
  ToleranceBelowDivergenceError,
} from "../../../offchain/inference/calibrate.js";
import { graphProblems, specHash } from "../../../offchain/inference/hub.js";
import { parseManifest } from "../../../offchain/inference/manifest.js";

const REPO = process.cwd();

function opg(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["bin/opg.mjs", ...args], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes the GELU model folder with its manifest's tolerance `abs` set as given. */
function geluFolder(dir: string, abs?: number): string {
  const m = geluModel();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.onnx"), m.onnx);
  const manifest = structuredClone(m.manifest) as {
    outputs: Array<{ tolerance: { abs: number } }>;
  };
  if (abs !== undefined) manifest.outputs[0]!.tolerance.abs = abs;
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2));
  return dir;
}

describe("calibration", function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "opg-calib-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  describe("configurations", () => {
    it("are the 4 optimisation levels × 1 and 2 threads on cpu, with cuda only when bundled", () => {
      expect(calibrationConfigs(false).map((c) => c.label)).to.deep.equal([
        "cpu/disabled/1t",
        "cpu/disabled/2t",
        "cpu/basic/1t",
        "cpu/basic/2t",
        "cpu/extended/1t",
        "cpu/extended/2t",
        "cpu/all/1t",
        "cpu/all/2t",
      ]);
      expect(calibrationConfigs(true)).to.have.length(16);
      expect(cudaAvailability([{ name: "cuda", bundled: false }])).to.deep.equal({
        available: false,
        reason: "cuda: not available here (the onnxruntime-node build lacks the CUDA provider)",
      });
      expect(cudaAvailability([{ name: "cuda", bundled: true }]).available).to.equal(true);
    });
  });

  describe("generated samples", () => {
    it("are the same for the same seed, differ for another, and bind symbolic dims to the batch", () => {
      const manifest = parseManifest(geluModel().manifest);
      const a = generateSamples(manifest, { samples: 2, batch: 3, seed: 7 });
      const b = generateSamples(manifest, { samples: 2, batch: 3, seed: 7 });
      const c = generateSamples(manifest, { samples: 2, batch: 3, seed: 8 });
      expect(a).to.have.length(2);
      expect(a[0]![0]!.dims).to.deep.equal([3, 64]);
      expect([...a[1]![0]!.data]).to.deep.equal([...b[1]![0]!.data]);
      expect([...a[0]![0]!.data]).to.not.deep.equal([...c[0]![0]!.data]);
    });
  });

  describe("measuring the GELU model", () => {
    it("finds a divergence from the enclave's config, proposes measured × margin and checks against it", async () => {
      const { manifest, bytes } = await readModelFolder(geluFolder(join(tmp, "lib")));
      const report = await calibrate(manifest, bytes, { samples: 2, batch: 16 });
      const y = report.outputs[0]!;
      expect(report.reference.label).to.equal("cpu/all/1t");
      expect(y.maxQuantDiff).to.be.greaterThan(0);
      expect(y.maxAbsDiff).to.be.greaterThan(0);
      // Elementwise: the smallest agreeing band is the largest quantised difference.
      expect(y.requiredAbs).to.equal(y.maxQuantDiff);
      const [p] = proposeTolerances(manifest, report, 3, 2);
      expect(p!.proposed).to.deep.equal({ ...y.tolerance, abs: Math.ceil(y.requiredAbs * 3) });
      const lowered = {
        ...report,
        outputs: [{ ...y, tolerance: { ...y.tolerance, abs: y.requiredAbs - 1 } }],
      };
      expect(() => checkTolerances(lowered)).to.throw(ToleranceBelowDivergenceError);
      expect(() =>
        checkTolerances({
          ...report,
          outputs: [{ ...y, tolerance: { ...y.tolerance, abs: y.requiredAbs } }],
        }),
      ).to.not.throw();
    });

    it("writes a manifest's single tolerance back as a single tolerance", () => {
      const json = { tolerance: 2, outputs: [{ name: "risk" }] };
      const updated = withTolerances(json, [
        {
          name: "risk",
          current: { mode: "elementwise", abs: 2, rel: 0 },
          proposed: { mode: "elementwise", abs: 7, rel: 0 },
          fromDefault: true,
        },
      ]);
      expect(updated).to.deep.equal({ tolerance: 7, outputs: [{ name: "risk" }] });
    });
  });

  describe("opg model calibrate / check", () => {
    it("calibrate prints the table and the JSON, and --write raises the tolerance check then accepts", () => {
      const dir = geluFolder(join(tmp, "cli"), 0);
      const table = opg("model", "calibrate", dir, "--samples", "2", "--batch", "16");
      expect(table.status, table.stderr).to.equal(0);
      expect(table.stdout).to.contain("reference cpu/all/1t (the enclave's)");
      expect(table.stdout).to.match(/cuda: (not available here|available, included)/);
      expect(table.stdout).to.match(/^y\s+elementwise\s+4000000000\s/m);

      const bad = opg("model", "check", dir, "--samples", "2", "--batch", "16");
      expect(bad.status).to.equal(1);
      expect(bad.stderr).to.contain("ToleranceBelowDivergenceError");
      expect(bad.stderr).to.match(
        /output "y" of model gelu: tolerance abs 0 is below the measured divergence [1-9]/,
      );

      const json = opg(
        "model",
        "calibrate",
        dir,
        "--samples",
        "2",
        "--batch",
        "16",
        "--margin",
        "2.5",
        "--json",
        "--write",
      );
      expect(json.status, json.stderr).to.equal(0);
      const report = JSON.parse(json.stdout) as {
        outputs: Array<{
          requiredAbs: number;
          maxRelDiff: number;
          argmaxDisagreements: number;
          fractionOutside: number;
        }>;
        proposals: Array<{ proposed: { abs: number } }>;
      };
      const measured = report.outputs[0]!.requiredAbs;
      expect(report.outputs[0]!.fractionOutside).to.be.greaterThan(0);
      expect(report.proposals[0]!.proposed.abs).to.equal(Math.max(2, Math.ceil(measured * 2.5)));
      const written = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
        outputs: Array<{ tolerance: { abs: number } }>;
      };
      expect(written.outputs[0]!.tolerance.abs).to.equal(report.proposals[0]!.proposed.abs);

      const ok = opg("model", "check", dir, "--samples", "2", "--batch", "16");
      expect(ok.status, ok.stderr).to.equal(0);
      expect(ok.stdout).to.contain(
        "ok: every output's tolerance covers the divergence measured here",
      );
    });

    it("check fails on a manifest whose tolerance was lowered just below the measured divergence", () => {
      const dir = geluFolder(join(tmp, "lowered"));
      const measured = (
        JSON.parse(opg("model", "calibrate", dir, "--samples", "2", "--json").stdout) as {
          outputs: Array<{ requiredAbs: number }>;
        }
      ).outputs[0]!.requiredAbs;
      expect(measured).to.be.greaterThan(0);
      geluFolder(dir, measured - 1);
      const r = opg("model", "check", dir, "--samples", "2");
      expect(r.status).to.equal(1);
      expect(r.stderr).to.contain(
        `tolerance abs ${measured - 1} is below the measured divergence ${measured}`,
      );
      expect(r.stderr).to.contain("output: y");
      geluFolder(dir, measured);
      expect(opg("model", "check", dir, "--samples", "2").status).to.equal(0);
    });

    it("takes sample inputs from --inputs and refuses ones the manifest refuses (exit 2)", () => {
      const dir = geluFolder(join(tmp, "inputs"), 0);
      const good = join(tmp, "good.json");
      writeFileSync(good, JSON.stringify({ x: { dims: [1, 64], data: new Array(64).fill(0) } }));
      // Zeros diverge nowhere: GELU(0) = 0 exactly under both kernels.
      expect(opg("model", "check", dir, "--inputs", good).status).to.equal(0);
      const bad = join(tmp, "bad.json");
      writeFileSync(bad, JSON.stringify([{ x: { dims: [1, 63], data: new Array(63).fill(0) } }]));
      const r = opg("model", "check", dir, "--inputs", bad);
      expect(r.status).to.equal(2);
      expect(r.stderr).to.contain("CalibrationInputError: calibration input set 0");
    });

    it("the shipped models pass check", () => {
      const r = opg("model", "check", "models/risk-mlp");
      expect(r.status, r.stderr).to.equal(0);
    });
  });

  describe("opg model add", () => {
    it("writes the folder with the engine's modelId, a graph-drawn manifest, and refuses to overwrite", () => {
      const onnx = join(tmp, "gelu.onnx");
      writeFileSync(onnx, geluModel().onnx);
      const out = join(tmp, "hub", "gelu");
      const r = opg("model", "add", onnx, "--out", out, "--json");
      expect(r.status, r.stderr).to.equal(0);
      const result = JSON.parse(r.stdout) as { modelId: string; specHash: string };
      expect(result.modelId).to.equal(keccak256(geluModel().onnx));
      const manifest = parseManifest(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")));
      expect(manifest).to.deep.include({
        name: "gelu",
        modelFile: "model.onnx",
        modelId: result.modelId,
      });
      expect(manifest.inputs).to.deep.equal([
        { name: "x", dtype: "float32", shape: ["batch", 64] },
      ]);
      expect(result.specHash).to.equal(specHash(manifest));
      expect(readFileSync(join(out, "model.onnx"))).to.deep.equal(Buffer.from(geluModel().onnx));

      const again = opg("model", "add", onnx, "--out", out);
      expect(again.status).to.equal(2);
      expect(again.stderr).to.contain(`ModelFolderExistsError: ${out} exists already`);
      expect(opg("model", "add", onnx, "--out", out, "--force").status).to.equal(0);
    });

    it("with --manifest --calibrate writes calibrated tolerances; a manifest that misdescribes the graph is refused", () => {
      const onnx = join(tmp, "gelu2.onnx");
      writeFileSync(onnx, geluModel().onnx);
      const manifestFile = join(tmp, "gelu-manifest.json");
      const { modelId: _drop, ...rest } = geluModel().manifest;
      void _drop;
      writeFileSync(manifestFile, JSON.stringify(rest));
      const out = join(tmp, "hub", "gelu-cal");
      const r = opg(
        "model",
        "add",
        onnx,
        "--manifest",
        manifestFile,
        "--out",
        out,
        "--calibrate",
        "--samples",
        "2",
      );
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.contain(`added model gelu in ${out}`);
      const written = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as {
        outputs: Array<{ tolerance: { abs: number } }>;
      };
      expect(written.outputs[0]!.tolerance.abs).to.be.greaterThan(2);

      const wrong = structuredClone(rest) as { inputs: Array<{ name: string; shape: unknown[] }> };
      wrong.inputs[0]!.shape = ["batch", 32];
      writeFileSync(manifestFile, JSON.stringify(wrong));
      const bad = opg(
        "model",
        "add",
        onnx,
        "--manifest",
        manifestFile,
        "--out",
        join(tmp, "hub", "bad"),
      );
      expect(bad.status).to.equal(2);
      expect(bad.stderr).to.contain("ManifestGraphMismatchError");
      expect(bad.stderr).to.contain('input \\"x\\": dimension 1 is 32, the graph fixes it at 64');
      expect(existsSync(join(tmp, "hub", "bad"))).to.equal(false);
    });

    it("graphProblems names missing tensors, dtypes and ranks", () => {
      const manifest = parseManifest(geluModel().manifest);
      expect(
        graphProblems(manifest, {
          inputs: [
            { name: "x", type: "int64", shape: ["n", 64, 1] },
            { name: "mask", type: "float32", shape: [1] },
          ],
          outputs: [],
        }),
      ).to.deep.equal([
        'input "x": dtype float32, the graph\'s is int64',
        'input "x": rank 2, the graph\'s is 3 ([n, 64, 1])',
        'input "mask": the graph needs it and the manifest does not name it',
        'output "y": the graph has no such output',
      ]);
    });
  });
});

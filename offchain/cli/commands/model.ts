/**
 * `opg model calibrate|check|add|publish` (docs/inference-tee.md, "Calibration" and "Model hub").
 * Exit codes: 0 success; 1 a tolerance below the measured divergence (check) or a reverted
 * registration; 2 bad input (flags, files, a manifest that does not describe its graph).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";

import type { Command } from "commander";
import { getAddress, isAddress } from "ethers";

import { InputError } from "../../common/errors.js";
import { stringifyJson } from "../../common/json.js";
import { addressOf } from "../../chain/deployment.js";
import { parseContributors, registerModel } from "../../chain/models.js";
import { connectRpc } from "../../chain/verify.js";
import {
  DEFAULT_FLOOR,
  DEFAULT_MARGIN,
  calibrate,
  checkTolerances,
  formatReport,
  proposeTolerances,
  readModelFolder,
  readSamples,
  withTolerances,
  type CalibrateOptions,
  type CalibrationReport,
  type ProposedTolerance,
} from "../../inference/calibrate.js";
import { addModel, specHash } from "../../inference/hub.js";
import { parseManifest, type ModelManifest } from "../../inference/manifest.js";
import { signerFor, withSigner, type SignerOptions } from "../signer.js";

interface SampleFlags {
  inputs?: string;
  samples: string;
  batch?: string;
  seed: string;
}

interface CalibrateFlags extends SampleFlags {
  margin: string;
  floor: string;
  write?: boolean;
  json?: boolean;
}

function positiveInt(value: string, flag: string, max: number): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > max)
    throw new InputError(`${flag} must be a whole number from 1 to ${max}`, {
      details: { [flag]: value },
    });
  return n;
}

function numberFlag(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min)
    throw new InputError(`${flag} must be a number of at least ${min}`, {
      details: { [flag]: value },
    });
  return n;
}

function withSamples(cmd: Command): Command {
  return cmd
    .option("--inputs <file>", "sample inputs: a JSON input set { name: { dims, data } } or a list")
    .option("--samples <n>", "else: this many generated input sets", "4")
    .option("--batch <n>", "size of every symbolic dimension in generated inputs (default 8)")
    .option("--seed <n>", "seed of the generated inputs", "1");
}

async function calibrationOptions(
  manifest: ModelManifest,
  flags: SampleFlags,
): Promise<CalibrateOptions> {
  if (flags.inputs !== undefined) return { inputs: await readSamples(manifest, flags.inputs) };
  return {
    samples: positiveInt(flags.samples, "--samples", 1000),
    seed: positiveInt(flags.seed, "--seed", 2 ** 32 - 1),
    ...(flags.batch === undefined ? {} : { batch: positiveInt(flags.batch, "--batch", 1_000_000) }),
  };
}

function reportJson(report: CalibrationReport, proposals?: ProposedTolerance[]): string {
  return stringifyJson({ ...report, ...(proposals === undefined ? {} : { proposals }) });
}

async function calibrateCommand(dir: string, flags: CalibrateFlags): Promise<void> {
  const margin = numberFlag(flags.margin, "--margin", 1);
  const floor = numberFlag(flags.floor, "--floor", 0);
  if (!Number.isInteger(floor))
    throw new InputError("--floor must be a whole number of quantised units", {
      details: { floor: flags.floor },
    });
  const { manifest, bytes, manifestPath, json } = await readModelFolder(dir);
  const report = await calibrate(manifest, bytes, await calibrationOptions(manifest, flags));
  const proposals = proposeTolerances(manifest, report, margin, floor);
  if (flags.json === true) console.log(reportJson(report, proposals));
  else {
    console.log(formatReport(report, proposals));
    console.log(`\nproposed = max(${floor}, ceil(measured × ${margin})) quantised units`);
  }
  if (flags.write === true) {
    const updated = withTolerances(json, proposals);
    parseManifest(updated, "the calibrated manifest");
    await writeFile(manifestPath, JSON.stringify(updated, null, 2) + "\n");
    if (flags.json !== true)
      console.log(
        `wrote ${manifestPath} (modelId unchanged; see docs/inference-tee.md for execConfigHash)`,
      );
  }
}

async function checkCommand(dir: string, flags: SampleFlags & { json?: boolean }): Promise<void> {
  const { manifest, bytes } = await readModelFolder(dir);
  const report = await calibrate(manifest, bytes, await calibrationOptions(manifest, flags));
  if (flags.json === true) console.log(reportJson(report));
  else console.log(formatReport(report));
  checkTolerances(report);
  if (flags.json !== true)
    console.log(`\nok: every output's tolerance covers the divergence measured here`);
}

interface AddFlags extends SampleFlags {
  manifest?: string;
  out?: string;
  name?: string;
  force?: boolean;
  calibrate?: boolean;
  margin: string;
  floor: string;
  json?: boolean;
}

async function addCommand(onnx: string, flags: AddFlags): Promise<void> {
  const margin = numberFlag(flags.margin, "--margin", 1);
  const floor = numberFlag(flags.floor, "--floor", 0);
  const result = await addModel(onnx, {
    ...(flags.manifest === undefined ? {} : { manifest: flags.manifest }),
    ...(flags.out === undefined ? {} : { out: flags.out }),
    ...(flags.name === undefined ? {} : { name: flags.name }),
    force: flags.force === true,
    calibrate: flags.calibrate === true,
    margin,
    floor,
    ...(flags.inputs === undefined ? {} : { inputsFile: flags.inputs }),
    calibration:
      flags.inputs === undefined
        ? {
            samples: positiveInt(flags.samples, "--samples", 1000),
            seed: positiveInt(flags.seed, "--seed", 2 ** 32 - 1),
            ...(flags.batch === undefined
              ? {}
              : { batch: positiveInt(flags.batch, "--batch", 1 << 16) }),
          }
        : {},
  });
  if (flags.json === true) {
    console.log(
      stringifyJson({
        dir: result.dir,
        modelId: result.modelId,
        specHash: result.specHash,
        manifest: result.manifest,
        ...(result.calibration === undefined ? {} : { calibration: result.calibration }),
      }),
    );
    return;
  }
  if (result.calibration !== undefined)
    console.log(formatReport(result.calibration.report, result.calibration.proposals) + "\n");
  console.log(`added model ${result.manifest.name} in ${result.dir}`);
  console.log(`  modelId  ${result.modelId}`);
  console.log(`  specHash ${result.specHash}`);
  console.log(
    `  publish: opg model publish ${result.dir} --rpc <url> --contributors <addr:bps,...> --metadata-uri <uri>`,
  );
}

interface PublishFlags extends SignerOptions {
  rpc: string;
  network: string;
  deployments: string;
  deployment?: string;
  registry?: string;
  contributors: string;
  metadataUri: string;
  json?: boolean;
}

async function publishCommand(dir: string, flags: PublishFlags): Promise<void> {
  // Everything local first: bad flags and folders fail before any network round trip.
  const contributors = parseContributors(flags.contributors);
  if (flags.metadataUri.trim() === "")
    throw new InputError("--metadata-uri must not be empty", { details: { metadataUri: "" } });
  const { manifest } = await readModelFolder(dir);
  let registry: string;
  if (flags.registry !== undefined) {
    if (!isAddress(flags.registry))
      throw new InputError("--registry is not an address", {
        details: { registry: flags.registry },
      });
    registry = getAddress(flags.registry);
  } else {
    registry = getAddress(
      await addressOf(
        flags.deployment ?? path.join(flags.deployments, flags.network),
        "ModelRegistry",
      ),
    );
  }
  const provider = await connectRpc(flags.rpc);
  try {
    if ((await provider.getCode(registry)) === "0x")
      throw new InputError("no contract at the ModelRegistry address", {
        details: { registry, rpc: flags.rpc },
      });
    const signer = await signerFor(provider, flags);
    const spec = specHash(manifest);
    const done = await registerModel(signer, registry, {
      modelId: manifest.modelId,
      specHash: spec,
      metadataUri: flags.metadataUri,
      contributors,
    });
    const out = {
      model: manifest.name,
      modelId: manifest.modelId,
      specHash: spec,
      metadataUri: flags.metadataUri,
      registry,
      owner: done.owner,
      contributors,
      txHash: done.txHash,
      block: done.block,
    };
    if (flags.json === true) console.log(stringifyJson(out));
    else {
      console.log(`registered ${manifest.name} (${manifest.modelId}) in ModelRegistry ${registry}`);
      console.log(`  owner ${done.owner}, tx ${done.txHash} (block ${done.block})`);
      console.log(`  specHash ${spec}, metadata ${flags.metadataUri}`);
      for (const c of contributors) console.log(`  contributor ${c.address} ${c.shareBps} bps`);
    }
  } finally {
    provider.destroy();
  }
}

export function register(program: Command): void {
  const model = program
    .command("model")
    .description(
      "model folders: calibrate tolerances, check them, add a model, publish it on chain",
    );
  withSamples(
    model
      .command("calibrate")
      .description(
        "run the model under every execution configuration here, measure each output's divergence from the enclave's, propose tolerances",
      )
      .argument("<dir>", "model folder (manifest.json + the ONNX file)"),
  )
    .option("--margin <x>", "proposed = measured × margin", String(DEFAULT_MARGIN))
    .option("--floor <units>", "smallest proposed abs, quantised units", String(DEFAULT_FLOOR))
    .option("--write", "write the proposed tolerances into manifest.json")
    .option("--json", "print the report as JSON")
    .action((dir: string, flags: CalibrateFlags) => calibrateCommand(dir, flags));
  withSamples(
    model
      .command("check")
      .description(
        "re-measure the divergence; exit 1 naming the output when its tolerance is below it",
      )
      .argument("<dir>", "model folder"),
  )
    .option("--json", "print the report as JSON")
    .action((dir: string, flags: SampleFlags & { json?: boolean }) => checkCommand(dir, flags));
  withSamples(
    model
      .command("add")
      .description(
        "make a model folder from an ONNX file: modelId, manifest checked against the graph, optional calibration",
      )
      .argument("<onnx>", "the ONNX model file"),
  )
    .option(
      "--manifest <file>",
      "manifest JSON (modelId and modelFile are filled in); default: drawn from the graph",
    )
    .option("--out <dir>", "folder to write (default models/<name>)")
    .option("--name <name>", "model name when there is no manifest (default: the file's base name)")
    .option("--force", "replace an existing folder")
    .option("--calibrate", "calibrate and write the proposed tolerances")
    .option(
      "--margin <x>",
      "with --calibrate: proposed = measured × margin",
      String(DEFAULT_MARGIN),
    )
    .option("--floor <units>", "with --calibrate: smallest proposed abs", String(DEFAULT_FLOOR))
    .option("--json", "print the result as JSON")
    .action((onnx: string, flags: AddFlags) => addCommand(onnx, flags));
  withSigner(
    model
      .command("publish")
      .description(
        "register the model in ModelRegistry with its contributors, shares and metadata URI",
      )
      .argument("<dir>", "model folder")
      .requiredOption("--rpc <url>", "JSON-RPC URL of the chain")
      .requiredOption("--contributors <list>", "address:basisPoints,... (summing to 10000)")
      .requiredOption(
        "--metadata-uri <uri>",
        "where the model file and its description can be fetched",
      )
      .option("--network <name>", "deployment record to read: deployments/<name>/", "localhost")
      .option("--deployments <dir>", "deployments folder", "deployments")
      .option("--deployment <dir>", "this deployment record folder instead (its addresses.json)")
      .option("--registry <address>", "ModelRegistry (default: from addresses.json)")
      .option("--json", "print the registration as JSON"),
  ).action((dir: string, flags: PublishFlags) => publishCommand(dir, flags));
}

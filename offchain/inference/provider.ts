/**
 * Execution provider and runtime options. The resolved config (provider, ORT version, options)
 * is hashed into every receipt's execConfigHash, so a receipt says how its output was computed.
 */
import { keccak256, toUtf8Bytes } from "ethers";
import * as ort from "onnxruntime-node";
import { z } from "zod";

import { InputError } from "../common/errors.js";
import { ProviderUnavailableError } from "./errors.js";

export const engineConfigSchema = z.strictObject({
  /** "auto": cuda when its provider is present, else cpu. "cuda": cuda or an error (or fallback). */
  provider: z.enum(["auto", "cpu", "cuda"]).default("auto"),
  /** When cuda was asked for and cannot load: fall back to cpu (logged) instead of failing. */
  allowCpuFallback: z.boolean().default(false),
  intraOpNumThreads: z.number().int().min(1).max(256).default(1),
  interOpNumThreads: z.number().int().min(1).max(256).default(1),
  graphOptimizationLevel: z.enum(["disabled", "basic", "extended", "all"]).default("all"),
  /** Runs in flight at once across all models; more wait their turn. */
  maxConcurrentRuns: z.number().int().min(1).max(1024).default(4),
});

export type EngineConfigInput = z.input<typeof engineConfigSchema>;
export type EngineConfig = z.output<typeof engineConfigSchema>;

export function parseEngineConfig(input: unknown): EngineConfig {
  const result = engineConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new InputError("invalid inference engine config", {
      details: {
        problems: result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
      },
    });
  }
  return result.data;
}

export type ProviderName = "cpu" | "cuda";

export interface Backend {
  name: string;
  bundled: boolean;
}

/** The canonical execution config: what execConfigHash is taken over. */
export interface ExecConfig {
  runtime: "onnxruntime-node";
  ortVersion: string;
  provider: ProviderName;
  options: {
    executionMode: "sequential";
    graphOptimizationLevel: EngineConfig["graphOptimizationLevel"];
    interOpNumThreads: number;
    intraOpNumThreads: number;
  };
}

export interface ProviderDecision {
  provider: ProviderName;
  /** Why: for the logs. */
  reason: string;
  fellBack: boolean;
}

export function supportedBackends(): Backend[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

export function ortVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** Chooses the provider before any session exists, from what the runtime says it bundles. */
export function chooseProvider(
  config: EngineConfig,
  backends: Backend[] = supportedBackends(),
): ProviderDecision {
  const cuda = backends.find((b) => b.name === "cuda");
  const cudaPresent = cuda?.bundled === true;
  if (config.provider === "cpu") return { provider: "cpu", reason: "configured", fellBack: false };
  if (config.provider === "auto") {
    return cudaPresent
      ? { provider: "cuda", reason: "auto: cuda provider present", fellBack: false }
      : {
          provider: "cpu",
          reason: "auto: cuda provider not present in this onnxruntime-node build",
          fellBack: false,
        };
  }
  if (cudaPresent) return { provider: "cuda", reason: "configured", fellBack: false };
  return cudaUnavailable(
    config,
    "the cuda execution provider is not bundled with this onnxruntime-node build",
  );
}

/**
 * What to do when cuda was chosen and cannot be used: fall back to cpu (logged) when the config
 * allows it or when cuda was only chosen by "auto"; otherwise fail with ProviderUnavailableError.
 */
export function cudaUnavailable(
  config: EngineConfig,
  why: string,
  cause?: unknown,
): ProviderDecision {
  if (config.allowCpuFallback || config.provider === "auto")
    return {
      provider: "cpu",
      reason: `cuda unavailable (${why}); fell back to cpu`,
      fellBack: true,
    };
  throw new ProviderUnavailableError("execution provider cuda cannot be loaded", {
    details: { requested: config.provider, why, backends: supportedBackends() },
    hint: "install the CUDA provider (onnxruntime-node postinstall with CUDA 12 + cuDNN 9), use provider cpu, or set allowCpuFallback",
    cause,
  });
}

export function execConfig(config: EngineConfig, provider: ProviderName): ExecConfig {
  return {
    runtime: "onnxruntime-node",
    ortVersion: ortVersion(),
    provider,
    options: {
      executionMode: "sequential",
      graphOptimizationLevel: config.graphOptimizationLevel,
      interOpNumThreads: config.interOpNumThreads,
      intraOpNumThreads: config.intraOpNumThreads,
    },
  };
}

/** JSON with keys sorted at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * execConfigHash = keccak-256 of the UTF-8 canonical JSON of the ExecConfig (plus, for a model
 * with per-output scale or tolerance, its `outputs`: InferenceEngine#execConfigHashFor).
 */
export function execConfigHash(config: ExecConfig & { outputs?: Record<string, unknown> }): string {
  return keccak256(toUtf8Bytes(canonicalJson(config)));
}

export function sessionOptions(
  config: EngineConfig,
  provider: ProviderName,
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    executionMode: "sequential",
    graphOptimizationLevel: config.graphOptimizationLevel,
    intraOpNumThreads: config.intraOpNumThreads,
    interOpNumThreads: config.interOpNumThreads,
  };
}

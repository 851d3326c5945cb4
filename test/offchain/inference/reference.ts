/**
 * Plain TypeScript forward passes of the shipped models, from the generator's weights: the
 * expected outputs the ONNX Runtime results are checked against (no ORT code involved).
 */
import {
  prng,
  riskMlpWeights,
  seqCnnWeights,
  type DenseLayer,
} from "../../../scripts/models/generate.js";

function dense(l: DenseLayer, x: number[]): number[] {
  const out: number[] = [];
  for (let o = 0; o < l.out; o++) {
    let s = l.b[o] as number;
    for (let i = 0; i < l.in; i++) s += (l.w[o * l.in + i] as number) * (x[i] as number);
    out.push(s);
  }
  return out;
}

const relu = (v: number[]): number[] => v.map((x) => Math.max(0, x));

/** risk-mlp on one row of 16 features -> [risk]. */
export function riskMlpReference(features: number[]): number[] {
  const [l1, l2, l3] = riskMlpWeights().layers;
  const z = dense(l3, relu(dense(l2, relu(dense(l1, features)))))[0] as number;
  return [1 / (1 + Math.exp(-z))];
}

/** seq-cnn on one signal of 32 steps -> 4 class probabilities. */
export function seqCnnReference(signal: number[]): number[] {
  const w = seqCnnWeights();
  const pad = (w.kernel - 1) / 2;
  const pooled: number[] = [];
  for (let c = 0; c < w.channels; c++) {
    let sum = 0;
    for (let t = 0; t < w.length; t++) {
      let v = w.convB[c] as number;
      for (let k = 0; k < w.kernel; k++) {
        const at = t + k - pad;
        if (at >= 0 && at < w.length)
          v += (w.convW[c * w.kernel + k] as number) * (signal[at] as number);
      }
      sum += Math.max(0, v);
    }
    pooled.push(sum / w.length);
  }
  const logits = dense(w.head, pooled);
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** Deterministic float32 inputs in [-2, 2). */
export function sampleInputs(seed: number, count: number): number[] {
  const next = prng(seed);
  return Array.from({ length: count }, () => Math.fround((next() / 2 ** 32) * 4 - 2));
}

import { BaseError, InputError, VerificationError } from "../common/errors.js";

/** A model manifest or model file that cannot be used (bad schema, hash mismatch, unreadable). */
export class ModelLoadError extends InputError {
  override name = "ModelLoadError";
}

/** No model in a models folder could be loaded; `details.failures` names each folder and why. */
export class NoModelsLoadedError extends ModelLoadError {
  override name = "NoModelsLoadedError";
}

/** Inference inputs that do not match the model's manifest (names, dtypes, shapes, values). */
export class InferenceInputError extends InputError {
  override name = "InferenceInputError";
}

/** A request's inputs are larger than the model allows (its manifest's maxInputBytes): 413. */
export class InferenceInputTooLargeError extends InferenceInputError {
  override name = "InferenceInputTooLargeError";
  override readonly httpStatus: number = 413;
}

/** A model produced something that cannot be canonicalised (NaN/Inf, out of fixed-point range). */
export class InferenceOutputError extends VerificationError {
  override name = "InferenceOutputError";
}

/** The configured execution provider cannot be used on this machine. */
export class ProviderUnavailableError extends BaseError {
  override name = "ProviderUnavailableError";
}

/** No model with that id is loaded. */
export class UnknownModelError extends InputError {
  override name = "UnknownModelError";
  override readonly httpStatus: number = 404;
}

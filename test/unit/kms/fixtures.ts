/** Shared set-up for the kms unit tests. */
import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { KmsError, type KmsErrorCode } from "../../../src/kms/errors.js";
import { createKmsService, type KmsServiceOptions } from "../../../src/kms/service.js";
import type { CallContext, KmsApi } from "../../../src/kms/service-types.js";
import type { FakeKeyWrapper } from "../../helpers/fake-key-wrapper.js";

export function ctx(api: KmsApi = "v2", signal?: AbortSignal): CallContext {
  return signal === undefined ? { api, uid: "test-uid" } : { api, uid: "test-uid", signal };
}

export const NONE: ReadonlyMap<string, Uint8Array> = new Map();

export function serviceFor(
  fake: FakeKeyWrapper,
  options: Partial<Omit<KmsServiceOptions, "wrapper">> = {},
): ReturnType<typeof createKmsService> {
  return createKmsService({
    wrapper: fake,
    allowlist: options.allowlist ?? new KeyAllowlist(fake.currentKey()),
    ...options,
  });
}

export async function startedServiceFor(
  fake: FakeKeyWrapper,
  options: Partial<Omit<KmsServiceOptions, "wrapper">> = {},
): Promise<ReturnType<typeof createKmsService>> {
  const service = serviceFor(fake, options);
  await service.start();
  return service;
}

/** Runs `fn` and returns the KmsError it threw or rejected with; fails on anything else. */
export async function kmsErrorOf(fn: () => unknown): Promise<KmsError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof KmsError) return error;
    throw new Error(`expected a KmsError, got ${String(error)}`, { cause: error });
  }
  throw new Error("expected a KmsError, but nothing was thrown");
}

export async function expectCode(fn: () => unknown, code: KmsErrorCode): Promise<KmsError> {
  const error = await kmsErrorOf(fn);
  expect(error.code).toBe(code);
  return error;
}

export function isZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

/** Lets timers, immediates and microtasks run. */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Shared set-up for the kms unit tests. */
import { KeyAllowlist } from "../../../src/kms/allowlist.js";
import { KmsError, type KmsErrorCode } from "../../../src/kms/errors.js";
import type { KeyReference } from "../../../src/kms/key-wrapper.js";
import type { KmsObserver } from "../../../src/kms/observer.js";
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
  // Tests drive polls by hand (poll()) unless they ask for the timer.
  return createKmsService({
    wrapper: fake,
    allowlist: options.allowlist ?? new KeyAllowlist(fake.versions()[0]!),
    pollIntervalMs: 0,
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

/** Polls `condition` every few ms until it holds; fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await tick(5);
  }
}

/** An observer that records every event as a short string, in order. */
export function recordingObserver(): { observer: KmsObserver; events: string[] } {
  const events: string[] = [];
  const v = (key: KeyReference | undefined): string => key?.keyVersion.slice(0, 6) ?? "-";
  const observer: KmsObserver = {
    onDecrypt: (key) => events.push(`decrypt ${v(key)}`),
    onCurrentKey: (key, keyId) => events.push(`current ${v(key)} ${keyId === "" ? "-" : "id"}`),
    onPromote: (from, to) => events.push(`promote ${v(from)}>${v(to)}`),
    onRevoke: (version, reason) => events.push(`revoke ${version.slice(0, 6)} ${reason}`),
    onRestore: (version) => events.push(`restore ${version.slice(0, 6)}`),
    onSeedCreated: (key, cause) => events.push(`seed ${v(key)} ${cause}`),
    onRefreshFailed: (error) => events.push(`failed ${error.code}`),
  };
  return { observer, events };
}

/**
 * The keys API version every Key Vault request asks for. The SDK sends its newest one; a cloud
 * that lags (Azure Stack Hub, sovereign clouds) answers 400 BadParameter "The specified version
 * (7.3) is not recognized. Consider using the latest supported version (7.1)."
 * (Azure/azure-sdk-for-python#28595). One policy, shared by every client: pinned by
 * --keyvault-api-version, or else it follows the version such an answer names, once, and from
 * then on for every request. The keys operations the plugin uses exist since 7.0.
 */
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import { KmsError } from "../kms/errors.js";
import type { AdditionalPolicyConfig } from "./proxy-mode.js";

const NOT_RECOGNIZED =
  /The specified version \(([^)]*)\) is not recognized\. Consider using the latest supported version \(([^)]+)\)/;
const VERSION = /^(\d+\.\d+(-preview(\.\d+)?)?|\d{4}-\d{2}-\d{2}(-preview)?)$/;
const PARAM = /([?&]api(?:-|%2D)version=)[^&#]*/i;

/** The version Key Vault suggests when it refuses the one sent, or undefined if this is no such answer. */
function suggestedApiVersion(status: number, body: string | undefined): string | undefined {
  if (status !== 400 || body === undefined) return undefined;
  const m = NOT_RECOGNIZED.exec(body);
  const suggested = m?.[2];
  return suggested !== undefined && VERSION.test(suggested) && suggested !== m?.[1]
    ? suggested
    : undefined;
}

function unsupportedPinned(suggested: string): KmsError {
  return new KmsError(
    "FAILED_PRECONDITION",
    `Key Vault does not know the api-version set by --keyvault-api-version; the newest it supports is ${suggested}: run with --keyvault-api-version ${suggested}`,
  );
}

export function isApiVersion(value: string): boolean {
  return VERSION.test(value);
}

function apiVersionOf(url: string): string | undefined {
  const raw = PARAM.exec(url)?.[0].split("=")[1];
  return raw === undefined ? undefined : decodeURIComponent(raw);
}

export function withApiVersion(url: string, version: string): string {
  return PARAM.test(url) ? url.replace(PARAM, `$1${encodeURIComponent(version)}`) : url;
}

export interface ApiVersionPolicy {
  readonly config: AdditionalPolicyConfig;
  /** The version every request now uses; undefined while it is the SDK's own. */
  current(): string | undefined;
}

export function apiVersionPolicy(
  pinned: string | undefined,
  onFallback?: (from: string, to: string) => void,
): ApiVersionPolicy {
  let version = pinned;
  const policy: PipelinePolicy = {
    name: "keyvaultKmsApiVersion",
    async sendRequest(request, next) {
      if (version !== undefined) request.url = withApiVersion(request.url, version);
      const sent = apiVersionOf(request.url);
      const response = await next(request);
      const suggested = suggestedApiVersion(response.status, response.bodyAsText ?? undefined);
      if (suggested === undefined || suggested === sent) return response;
      // Thrown here, where the body is at hand: a failed page's RestError no longer carries it.
      if (pinned !== undefined) throw unsupportedPinned(suggested);
      if (version !== suggested) {
        version = suggested;
        onFallback?.(sent ?? "", suggested);
      }
      request.url = withApiVersion(request.url, suggested);
      return next(request);
    },
  };
  return { config: { policy, position: "perCall" }, current: () => version };
}

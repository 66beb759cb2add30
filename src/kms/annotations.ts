/** kube-apiserver's own checks on EncryptResponse annotations (docs/kms-contract.md §2.2), applied on Decrypt. */
import { KmsError } from "./errors.js";

export const MAX_ANNOTATIONS_SIZE = 32 * 1024;
const MAX_DNS_NAME = 253;
const MAX_LABEL = 63;
const RFC1123_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a fully qualified domain name as apimachinery means it, or undefined. */
export function annotationKeyProblem(key: string): string | undefined {
  if (key.length === 0) return "is empty";
  const name = key.endsWith(".") ? key.slice(0, -1) : key;
  if (name.length > MAX_DNS_NAME) return `is longer than ${MAX_DNS_NAME} characters`;
  if (!RFC1123_SUBDOMAIN.test(name)) return "is not a lowercase RFC 1123 subdomain";
  const labels = name.split(".");
  if (labels.length < 2) return "should be a domain with at least two segments separated by dots";
  if (labels.some((label) => label.length > MAX_LABEL)) {
    return `has a label longer than ${MAX_LABEL} characters`;
  }
  return undefined;
}

function quoted(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);
}

/** Throws KmsError INVALID_ARGUMENT unless kube-apiserver itself would accept `annotations`. */
export function validateAnnotations(annotations: ReadonlyMap<string, Uint8Array>): void {
  if (annotations.size === 0) return;
  let total = 0;
  for (const [key, value] of annotations) {
    const problem = annotationKeyProblem(key);
    if (problem !== undefined) {
      throw new KmsError("INVALID_ARGUMENT", `annotation key ${quoted(key)} ${problem}`);
    }
    total += Buffer.byteLength(key, "utf8") + value.length;
  }
  if (total > MAX_ANNOTATIONS_SIZE) {
    throw new KmsError(
      "INVALID_ARGUMENT",
      `total size of annotations is ${total}, which exceeds the max size of ${MAX_ANNOTATIONS_SIZE}`,
    );
  }
}

/** Our envelope is self-contained: a request that carries annotations was not written by us. */
export function expectNoAnnotations(annotations: ReadonlyMap<string, Uint8Array>): void {
  if (annotations.size === 0) return;
  const keys = [...annotations.keys()].slice(0, 3).map(quoted).join(", ");
  throw new KmsError(
    "INVALID_ARGUMENT",
    `this plugin's ciphertexts carry no annotations, but the request has ${annotations.size} (${keys})`,
  );
}

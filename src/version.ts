import { readFileSync } from "node:fs";

/** Build information, printed by `--version` in the Go plugin's JSON shape. */
export interface BuildInfo {
  readonly BuildVersion: string;
  readonly GitCommit: string;
  readonly BuildDate: string;
}

function readJson(relative: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(new URL(relative, import.meta.url), "utf8"));
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function text(value: unknown): string {
  return typeof value === "string" && value !== "" ? value : "unknown";
}

const pkg = readJson("../package.json");
// Written next to the compiled code by image builds (commit and date are not known to npm).
const stamp = readJson("./build-info.json");

export const buildInfo: BuildInfo = Object.freeze({
  BuildVersion: text(pkg["version"]),
  GitCommit: text(stamp["GitCommit"]),
  BuildDate: text(stamp["BuildDate"]),
});

export const userAgent = `keyvault-kms/${buildInfo.BuildVersion}`;

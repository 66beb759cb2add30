/**
 * What most tests of a running plugin start with: an emulator in this process, and serve's
 * command line for it on a temp socket, with the operator ports on free loopback ports.
 */
import { join } from "node:path";
import type { Emulator, EmulatorKeySpec } from "@keyvault-kms/emulator";
import { contractLine, startEmulatorFrom } from "../../src/commands/emulator.js";

export type Contract = ReturnType<typeof contractLine>;

/** An RSA-2048 key named kms-kek unless `key` says otherwise; its state under `dir/emu`. */
export async function startTestEmulator(
  dir: string,
  key: EmulatorKeySpec = { name: "kms-kek", kty: "RSA", size: 2048 },
): Promise<{ emu: Emulator; contract: Contract }> {
  const emu = await startEmulatorFrom({ stateDir: join(dir, "emu"), port: 0, key });
  return { emu, contract: contractLine(emu, key.name) };
}

/** serve's flags: the contract's, the socket, free metrics and health ports, then `extra`. */
export function serveArgs(contract: Contract, socket: string, extra: string[] = []): string[] {
  return [
    ...contract.serveArgs,
    "--listen-addr",
    `unix://${socket}`,
    "--metrics-addr",
    "127.0.0.1:0",
    "--healthz-port",
    "0",
    ...extra,
  ];
}

/** The metrics and health ports a plugin logged it serves on ("serving …" lines). */
export function servedPorts(log: string): { metricsPort: number; healthPort: number } {
  return {
    metricsPort: Number(/"url":"http:\/\/127\.0\.0\.1:(\d+)\/metrics"/.exec(log)?.[1]),
    healthPort: Number(/"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(log)?.[1]),
  };
}

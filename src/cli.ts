#!/usr/bin/env node
import { clientCommand } from "./commands/client.js";
import { devCommand } from "./commands/dev.js";
import { emulatorCommand } from "./commands/emulator.js";
import { exitCodes, type Command, type CommandIo } from "./commands/io.js";
import { serveCommand } from "./commands/serve.js";

const commands: Record<string, Command> = {
  serve: serveCommand,
  emulator: emulatorCommand,
  dev: devCommand,
  client: clientCommand,
};

/** The only module that touches process.*: arguments, signals, streams and the exit code. */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const first = argv[0];
  // No subcommand, or a flag first: `serve`, so the Go plugin's command lines work unchanged.
  const name = first === undefined || first.startsWith("-") ? "serve" : first;
  const command = commands[name];
  const rest = first === name ? argv.slice(1) : argv;
  if (command === undefined) {
    process.stderr.write(
      `keyvault-kms: unknown command "${name}" (serve, emulator, dev, client; serve --help for flags)\n`,
    );
    return exitCodes.usage;
  }
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      process.stderr.write(`keyvault-kms: second ${signal}, exiting now\n`);
      process.exit(exitCodes.failed);
    }
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const io: CommandIo = {
    env: process.env,
    cwd: process.cwd(),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    stop: stop.signal,
    stdin: process.stdin,
  };
  return command(rest, io);
}

// Exit explicitly: idle keep-alive sockets of the Azure SDK must not hold a stopped plugin open.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`keyvault-kms: unexpected failure: ${String(err)}\n`);
    process.exit(exitCodes.failed);
  },
);

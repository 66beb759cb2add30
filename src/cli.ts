#!/usr/bin/env node
import { exitCodes, type Command, type CommandIo } from "./commands/io.js";

// Loaded on demand: `client` must not pay for the Azure SDK, nor `serve` for the emulator.
const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./commands/serve.js")).serveCommand,
  emulator: async () => (await import("./commands/emulator.js")).emulatorCommand,
  dev: async () => (await import("./commands/dev.js")).devCommand,
  client: async () => (await import("./commands/client.js")).clientCommand,
  doctor: async () => (await import("./commands/doctor.js")).doctorCommand,
};

/** The only module that touches process.*: arguments, signals, streams and the exit code. */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const first = argv[0];
  // No subcommand, or a flag first: `serve`, so the Go plugin's command lines work unchanged.
  const name = first === undefined || first.startsWith("-") ? "serve" : first;
  const load = commands[name];
  const rest = first === name ? argv.slice(1) : argv;
  if (load === undefined) {
    process.stderr.write(
      `keyvault-kms: unknown command "${name}" (serve, doctor, emulator, dev, client; serve --help for flags)\n`,
    );
    return exitCodes.usage;
  }
  const command = await load();
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
  // Without a listener, SIGUSR1 opens Node's inspector on 127.0.0.1:9229, and whoever reaches that
  // port (anyone on the node, with the host network of a static pod) can read the seeds out of
  // memory or run code in the plugin. A listener replaces that default. To debug, start with
  // --inspect instead.
  process.on("SIGUSR1", () => {
    process.stderr.write("keyvault-kms: SIGUSR1 ignored: the inspector is not opened on signal\n");
  });
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

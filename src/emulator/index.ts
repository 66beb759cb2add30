export { createEmulator } from "./emulator.js";
export { OPERATIONS } from "./counters.js";
export type {
  Emulator,
  EmulatorFlavor,
  EmulatorKeySpec,
  EmulatorKeyType,
  EmulatorOptions,
  FaultKind,
  FaultSpec,
  KeyVersionRef,
  KeyVersionUpdate,
} from "./types.js";

export { createMetricsServer } from "./metrics-server.js";
export type { MetricsServer, MetricsSource } from "./metrics-server.js";
export { HttpAddressError, parseHttpAddress } from "./listen-address.js";
export type { HttpAddress } from "./listen-address.js";

# syntax=docker/dockerfile:1
#
# keyvault-kms image: compiled JavaScript and production dependencies on distroless Node 24.
#
#   docker build \
#     --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#     --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     -t keyvault-kms:0.1.0 .
#   docker run --rm keyvault-kms:0.1.0 --version
#
# Runtime properties (checked by test/integration/image-layout.test.ts where they can be checked
# without a Docker engine):
# - no shell, no package manager: gcr.io/distroless/nodejs24-debian12 (glibc, CA certificates);
# - production dependencies only (`npm ci --omit=dev` in its own stage), and no emulator: the
#   workspace package packages/emulator is neither copied nor installed there;
# - non-root by default: numeric USER 65532:65532, so that kubelet can enforce runAsNonRoot;
# - nothing is written at run time except the KMS socket (a mounted directory), so the root
#   filesystem can be mounted read-only.
# A root-only (0600) /etc/kubernetes/azure.json cannot be read by uid 65532: run the container as
# uid 0 with every capability dropped (deploy/base does), make azure.json group-readable and add
# that group (deploy/overlays/nonroot), or use workload identity (no azure.json). See deploy/README.md.
#
# Pin the base images by digest in your own builds (tag@sha256:…) for reproducibility.

ARG NODE_BUILD_IMAGE=node:24-bookworm-slim
ARG NODE_RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# --- build: full dependency tree, TypeScript → dist/ ---------------------------------------------
FROM ${NODE_BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages/emulator/package.json ./packages/emulator/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# The emulator workspace package is built here only for the types its `emulator` command loader
# names; the runtime stage takes the plugin's dist/ alone, so the image holds no emulator.
COPY packages/emulator/tsconfig.build.json ./packages/emulator/
COPY packages/emulator/src ./packages/emulator/src
COPY src ./src
RUN npm run build
# src/version.ts reads ./build-info.json next to the compiled code for `--version`.
ARG GIT_COMMIT=unknown
ARG BUILD_DATE=unknown
RUN node -e "require('fs').writeFileSync('dist/build-info.json', JSON.stringify({ GitCommit: process.env.GIT_COMMIT, BuildDate: process.env.BUILD_DATE }) + '\n')"

# --- deps: production dependencies only ------------------------------------------------------------
FROM ${NODE_BUILD_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime: distroless, non-root, no shell ---------------------------------------------------------
FROM ${NODE_RUNTIME_IMAGE} AS runtime
WORKDIR /app
COPY --from=deps /src/package.json ./package.json
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
ENV NODE_ENV=production
USER 65532:65532
# 8095: /metrics (--metrics-addr). 8787: /livez, /readyz, /healthz (--healthz-port, on 127.0.0.1).
EXPOSE 8095 8787
# A 4 MiB young generation (V8's default grows to 16 MiB per semi-space): every request's garbage
# dies young, so the smaller one costs no throughput and keeps RSS under load ~40 MiB lower
# (docs/benchmarks.md). `npm run bench` starts the plugin with the node flags written here.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=4", "/app/dist/cli.js"]
CMD ["serve"]

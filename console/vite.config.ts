// Builds the console into dist/: hashed files under dist/assets, nothing inline (the control plane
// serves them with `script-src 'self'; style-src 'self'`), no external URLs.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    // `npm run dev`: forward the API calls to a control plane (CP_URL, default the stack's address).
    proxy: {
      "/webhook.gateway.v1.": { target: process.env.CP_URL ?? "http://127.0.0.1:50051", changeOrigin: true },
    },
  },
});

// Two pages: the plain API (index.html) and the React hook (react.html). No plugins: this is
// the configuration a user starts with, and the package must build under it as installed.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  // The dev server would pre-bundle the package and break the wasm URL; `vite build` does not
  // need this, it is here so `vite` (dev) works too, as the package README says.
  optimizeDeps: { exclude: ["tessera"] },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: {
        main: resolve(here, "index.html"),
        react: resolve(here, "react.html"),
      },
    },
  },
});

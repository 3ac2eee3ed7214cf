// One page per way of using the package: the plain API (index.html), the React hook
// (react.html, no plugin: it uses createElement), the Vue composable in a single-file
// component (vue.html) and the Svelte store in a Svelte 5 component (svelte.html). The Vue
// and Svelte plugins are the ones those users start with; they touch only .vue / .svelte
// files. csp.html / csp-denied.html run the plain API under a strict Content-Security-Policy
// with and without 'wasm-unsafe-eval'. Nothing tessera-specific is configured: the package
// must build as installed.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

const here = dirname(fileURLToPath(import.meta.url));

const pages = {
  main: "index.html",
  react: "react.html",
  vue: "vue.html",
  svelte: "svelte.html",
  csp: "csp.html",
  "csp-denied": "csp-denied.html",
};

// The development build (run.mjs, under /dev/) exists for React StrictMode's double mount
// only: it builds the React page alone, which keeps the consumer layer shorter.
export default defineConfig(({ mode }) => ({
  plugins: [vue(), svelte()],
  // The dev server would pre-bundle the package and break the wasm URL; `vite build` does not
  // need this, it is here so `vite` (dev) works too, as the package README says.
  optimizeDeps: { exclude: ["tessera"] },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: Object.fromEntries(
        Object.entries(pages)
          .filter(([name]) => mode !== "development" || name === "react")
          .map(([name, file]) => [name, resolve(here, file)]),
      ),
    },
  },
}));

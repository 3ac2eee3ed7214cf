// webpack 5, production mode, no loaders or plugins for the package: the default entry's
// `new URL("tessera_bg.wasm", import.meta.url)` is webpack's own asset syntax, so the .wasm is
// emitted next to the bundle and fetched from there. The entry is the plain-API page's script
// (../src/main.js), so both bundlers run the very same user code.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export default {
  mode: "production",
  context: resolve(here, ".."),
  entry: { main: "./src/main.js" },
  output: {
    path: resolve(here, "../dist/webpack"),
    filename: "[name].[contenthash].js",
    publicPath: "auto",
    clean: true,
  },
  performance: { hints: false },
};

// Builds webpack/webpack.config.mjs with webpack's Node API (what `webpack --config` does,
// without webpack-cli) and writes dist/webpack/index.html for the emitted entry chunk.
// Fails on any webpack error or warning.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import webpack from "webpack";
import config from "./webpack.config.mjs";

const stats = await new Promise((resolve, reject) =>
  webpack(config, (err, s) => (err ? reject(err) : resolve(s))),
);
const info = stats.toJson({ all: false, errors: true, warnings: true, assets: true, entrypoints: true });
if (stats.hasErrors() || stats.hasWarnings()) {
  for (const e of [...info.errors, ...info.warnings]) console.error(e.message);
  process.exit(1);
}
const scripts = info.entrypoints.main.assets.map((a) => a.name);
writeFileSync(
  join(config.output.path, "index.html"),
  `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <title>tessera consumer: webpack 5</title>
  ${scripts.map((s) => `<script defer src="${s}"></script>`).join("\n  ")}
</head>
<body>
  <h1>tessera consumer: webpack 5</h1>
  <ol id="steps"></ol>
  <p id="outcome">running</p>
</body>
</html>
`,
);
console.log(JSON.stringify({ assets: info.assets.map((a) => a.name) }));

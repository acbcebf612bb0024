// A tiny static server for dist/ — on its own origin, not the backend's.
//   API_URL   the backend (default http://127.0.0.1:8080), handed to the page in /config.js
//   PORT      default 3001; 0 picks a free port. Prints "listening on <url>" when ready.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const dist = resolve(dirname(fileURLToPath(import.meta.url)), "../dist");
const api = process.env.API_URL ?? "http://127.0.0.1:8080";
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };

const server = createServer(async (req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (path === "/config.js") {
    res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" });
    return res.end(`window.MOCHEONG_API = ${JSON.stringify(api)};\n`);
  }
  const file = resolve(dist, `.${path === "/" ? "/index.html" : path}`);
  if (!file.startsWith(dist)) {
    res.writeHead(404);
    return res.end();
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  }
});
server.listen(Number(process.env.PORT ?? 3001), process.env.HOST ?? "127.0.0.1", () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

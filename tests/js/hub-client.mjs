// Drives Hugging Face's own JS client (@huggingface/hub) against a hub endpoint, for tests/ZipLlm.Tests/Serve.
// Usage: node hub-client.mjs ENDPOINT CACHE_DIR MODEL...
// For each model: snapshotDownload into CACHE_DIR (an HF cache), listFiles (recursive), fileDownloadInfo and a
// downloadFile slice of its largest file, parseSafetensorsMetadata. Prints one JSON document; exits 1 on any error.
import { snapshotDownload, listFiles, downloadFile, fileDownloadInfo, parseSafetensorsMetadata } from "@huggingface/hub";

const [hubUrl, cacheDir, ...models] = process.argv.slice(2);
// The client says what it downloads on console.debug: keep stdout for the result.
console.debug = () => {};
const result = {};
for (const repo of models) {
  const snapshot = await snapshotDownload({ repo, cacheDir, hubUrl });
  const files = [];
  for await (const entry of listFiles({ repo, hubUrl, recursive: true })) {
    files.push({ type: entry.type, path: entry.path, size: entry.size, oid: entry.oid, lfs: entry.lfs ?? null });
  }
  const largest = files.filter((f) => f.type === "file").sort((a, b) => b.size - a.size)[0];
  const info = await fileDownloadInfo({ repo, path: largest.path, hubUrl });
  const blob = await downloadFile({ repo, path: largest.path, hubUrl });
  const start = Math.floor(largest.size / 3);
  const end = Math.min(largest.size, start + 1000);
  const slice = Buffer.from(await blob.slice(start, end).arrayBuffer()).toString("base64");
  let tensors = null;
  const safetensors = await parseSafetensorsMetadata({ repo, hubUrl });
  if (safetensors.sharded) {
    tensors = Object.values(safetensors.headers).flatMap((h) => Object.keys(h).filter((k) => k !== "__metadata__"));
  } else {
    tensors = Object.keys(safetensors.header).filter((k) => k !== "__metadata__");
  }
  const missing = await fileDownloadInfo({ repo, path: "no-such-file.bin", hubUrl });
  result[repo] = {
    snapshot,
    files,
    info: { path: largest.path, etag: info.etag, size: info.size },
    slice: { path: largest.path, start, end, base64: slice },
    tensors: tensors.sort(),
    missingIsNull: missing === null,
  };
}
process.stdout.write(JSON.stringify(result));

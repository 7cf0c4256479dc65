// Parses a HAR file with Chromium DevTools' own HAR parser (front_end/models/har/HARFormat.ts
// of the chrome-devtools-frontend package, the code behind the Network panel's "Import HAR"),
// so a file Tandem records is known to import. TypeScript's transpiler strips the types; the
// parser's two imports from the rest of DevTools are replaced by what it uses of them.
//
// usage: node har-check.mjs TYPESCRIPT_JS HARFORMAT_TS HAR_FILE... (run by `cargo xtask e2e`)
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [typescriptJs, harFormatTs, ...harFiles] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(resolve(typescriptJs));
let source = readFileSync(harFormatTs, 'utf8');
// What HARFormat.ts uses of DevTools' core: the initiator type's default, and the check that
// a URL's scheme is one a page may load (DevTools' ParsedURL.hasWebSafeScheme).
const stubs = `
const Common = { ParsedURL: { hasWebSafeScheme: (url) => /^(https?|wss?|data|file|blob|chrome-extension):/.test(url) } };
const SDK = { NetworkRequest: { InitiatorType: { OTHER: 'other' } } };
`;
source = source.replace(/^import \* as Common from .*$/m, '').replace(/^import \* as SDK from .*$/m, '');
const js = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
}).outputText;
const dir = mkdtempSync(join(tmpdir(), 'har-check-'));
const module = join(dir, 'HARFormat.mjs');
writeFileSync(module, stubs + js);
const { HARRoot } = await import(pathToFileURL(module));

for (const harFile of harFiles) {
  const root = new HARRoot(JSON.parse(readFileSync(harFile, 'utf8')));
  const entries = root.log.entries;
  if (entries.length === 0) {
    throw new Error(`${harFile}: the HAR has no entries`);
  }
  for (const e of entries) {
    const t = e.timings;
    const ms = (x) => (x === undefined ? 'absent' : x < 0 ? x : x.toFixed(3));
    console.log(`${e.request.method} ${e.request.url} -> ${e.response.status} ${e.response.httpVersion},` +
      ` ${e.response.content.size} B ${e.response.content.mimeType}; ms: total ${ms(e.time)},` +
      ` blocked ${ms(t.blocked)} dns ${ms(t.dns)} connect ${ms(t.connect)} ssl ${ms(t.ssl)}` +
      ` send ${ms(t.send)} wait ${ms(t.wait)} receive ${ms(t.receive)}`);
  }
  console.log(`har-check: ${harFile}: ${entries.length} entries parsed by DevTools' HARFormat` +
    ` (HAR ${root.log.version}, creator ${root.log.creator.name} ${root.log.creator.version})`);
}

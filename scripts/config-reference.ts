// npm run config:docs — regenerates README's config reference and docs/lm-gate.schema.json from
// the zod schema. Run it after changing any extproc/*/config.ts; extproc/config/docs.test.ts
// fails until the checked-in files match.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { configDocs } from '../extproc/config/docs.ts';

const root = join(import.meta.dirname, '..');
const readme = await readFile(join(root, 'README.md'), 'utf8');
for (const file of configDocs(readme)) {
  const path = join(root, file.path);
  const before = await readFile(path, 'utf8').catch(() => undefined);
  if (before === file.content) {
    console.log(`${file.path}: up to date`);
    continue;
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, file.content);
  console.log(`${file.path}: written`);
}

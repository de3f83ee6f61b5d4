// Hot reload: watch the config file's directory (editors and Kubernetes ConfigMaps replace the
// file by rename, which a watch on the file itself would miss), re-read on change, and hand a
// valid config to onValid. An invalid file is reported to onInvalid and the old config keeps
// serving.
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, parseConfigFile } from './load.ts';
import type { Config } from './schema.ts';

export function watchConfig(
  path: string,
  handlers: { onValid(config: Config): void; onInvalid(err: ConfigError): void },
  debounceMs = 100,
): () => void {
  const file = resolve(path);
  let timer: NodeJS.Timeout | undefined;
  let lastText: string | undefined;
  const check = async () => {
    timer = undefined;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return; // mid-rename; the next event will bring the new file
    }
    if (text === lastText) return;
    lastText = text;
    try {
      handlers.onValid(parseConfigFile(text, path));
    } catch (err) {
      handlers.onInvalid(err instanceof ConfigError ? err : new ConfigError(path, [String(err)]));
    }
  };
  // Seed with the current text so the first event only fires on a real change.
  readFile(file, 'utf8').then(
    (t) => {
      lastText ??= t;
    },
    () => {},
  );
  const watcher = watch(dirname(file), (_event, name) => {
    if (name !== null && name !== basename(file) && !name.startsWith('..')) return;
    clearTimeout(timer);
    timer = setTimeout(check, debounceMs);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

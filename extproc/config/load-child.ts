// The config loader process (load-in-child.ts): validates one config, sends the result and
// exits, taking zod and the config schemas with it.
import { readFile } from 'node:fs/promises';
import { keysFilePath } from './keys-file.ts';
import { joinKeysFile, keysFileUnreadable, type LoadedConfig, loadConfigSources, parseConfigFile } from './load.ts';
import { type CheckReply, errorData, type LoadRequest, type Result } from './load-in-child.ts';
import type { Config } from './schema.ts';
import { unreadableMark } from './watch.ts';

async function load(path: string, env: NodeJS.ProcessEnv): Promise<Result<LoadedConfig>> {
  try {
    return { ok: true, value: await loadConfigSources(path, env) };
  } catch (err) {
    return { ok: false, error: errorData(err) };
  }
}

/** The watcher's check of `text`, the config file as it read it: parse, then the keys file. */
async function check(path: string, text: string, env: NodeJS.ProcessEnv): Promise<CheckReply> {
  let config: Config;
  try {
    config = parseConfigFile(text, path, env);
  } catch (err) {
    return { keysPart: undefined, result: { ok: false, error: errorData(err) } };
  }
  const keysFile = keysFilePath(path, config);
  const follow = { keysFile };
  if (keysFile === undefined) return { follow, keysPart: undefined, result: { ok: true, value: config } };
  let keysText: string;
  try {
    keysText = await readFile(keysFile, 'utf8');
  } catch (err) {
    return {
      follow,
      keysPart: unreadableMark(err),
      result: { ok: false, error: errorData(keysFileUnreadable(path, keysFile, err)) },
    };
  }
  try {
    return { follow, keysPart: keysText, result: { ok: true, value: joinKeysFile(config, path, keysFile, keysText) } };
  } catch (err) {
    return { follow, keysPart: keysText, result: { ok: false, error: errorData(err) } };
  }
}

process.once('message', async (request: LoadRequest) => {
  const reply =
    request.kind === 'load'
      ? await load(request.path, request.env)
      : await check(request.path, request.text, request.env);
  // Disconnected once sent: nothing else keeps the process alive, so it exits.
  process.send?.(reply, () => process.disconnect());
});

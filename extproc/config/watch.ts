// Hot reload: watch the config file's directory, and the keys file's when the config names one
// (editors and Kubernetes ConfigMaps and Secrets replace a file by rename, or swap the `..data`
// symlink beside it, which a watch on the file itself would miss); re-read both on a change and
// hand a valid config, the keys file's keys joined, to onValid. An invalid config or keys file,
// or a keys file that cannot be read, is reported to onInvalid and the old config keeps serving.
// The files are validated in a short-lived loader process (load-in-child.ts), so zod never
// loads in the serving gate. A change event starts that process at once, while the change
// settles; one that left both files as they were uses none (the one started is let go).
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from './config-error.ts';
import type { LoadedConfig } from './load.ts';
import {
  type CheckReply,
  checkConfigInChild,
  type Env,
  prewarmLoader,
  type Result,
  rebuildError,
} from './load-in-child.ts';
import type { Config } from './schema.ts';

export interface ConfigWatchHandlers {
  onValid(config: Config): void;
  onInvalid(err: ConfigError): void;
}

/** Watches what `initial` was loaded from (loadConfigSources) and reports each change once. */
export function watchConfig(
  path: string,
  initial: LoadedConfig,
  handlers: ConfigWatchHandlers,
  debounceMs = 100,
  env: Env = process.env,
): () => void {
  let last = fingerprint(initial.texts[0], initial.texts[1]);
  let timer: NodeJS.Timeout | undefined;
  // One check at a time: a change that arrives during a check schedules another after it.
  let checking = false;
  let again = false;

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(run, debounceMs);
  };
  const run = () => {
    timer = undefined;
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    void check().finally(() => {
      checking = false;
      if (again) {
        again = false;
        schedule();
      }
    });
  };

  // The config text last checked and, when it was a valid config, the keys file it names: a
  // change event that left both files as they were is recognised here, without a loader process.
  let lastText = initial.texts[0];
  let lastFollow: CheckReply['follow'] = { keysFile: initial.keysFile };

  const check = async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return; // mid-rename; the next event will bring the new file
    }
    if (text === lastText && fingerprint(text, await readKeysPart(lastFollow?.keysFile)) === last) {
      // As a check would: retry a keys file watch whose directory could not be watched.
      if (lastFollow) keysWatch.follow(lastFollow.keysFile);
      return;
    }
    let checked: CheckReply;
    try {
      checked = await checkConfigInChild(path, text, env);
    } catch (err) {
      // The loader itself failed (it could not start, or crashed): the config was not
      // read, so this is reported, and the same files are checked again on the next event.
      handlers.onInvalid(new ConfigError(path, [String(err)]));
      return;
    }
    lastText = text;
    lastFollow = checked.follow;
    if (checked.follow) keysWatch.follow(checked.follow.keysFile);
    report(fingerprint(text, checked.keysPart), checked.result);
  };

  /** Hands the result to the handlers, unless the files read as they did when last reported:
   * a touch, or an event for an unrelated file. */
  const report = (print: string, result: Result<Config>) => {
    if (print === last) return;
    last = print;
    if (result.ok) return handlers.onValid(result.value);
    const err = rebuildError(result.error);
    handlers.onInvalid(err instanceof ConfigError ? err : new ConfigError(path, [err.message]));
  };

  // A change event starts the check's loader process at once, so its start overlaps the
  // debounce (a keys file revocation reaches every replica that much sooner); the check itself
  // still waits for the change to settle.
  const changed = () => {
    prewarmLoader();
    schedule();
  };
  const configWatch = watchFileIn(path, changed);
  const keysWatch = new FollowingWatch(changed);
  keysWatch.follow(initial.keysFile);
  // A change between the initial load and the watch starting is caught here.
  schedule();
  return () => {
    clearTimeout(timer);
    configWatch?.close();
    keysWatch.follow(undefined);
  };
}

const fingerprint = (configText: string, keysPart: string | undefined) => `${configText}\0${keysPart ?? ''}`;

/** What stands for a keys file that could not be read in the comparison: its error code, so a
 * keys file that appears (or changes from missing to unreadable) is a change. */
export const unreadableMark = (err: unknown) => `\0unreadable ${(err as NodeJS.ErrnoException).code}`;

/** The keys file's text, its unreadable mark, or undefined when the config names none. */
async function readKeysPart(keysFile: string | undefined): Promise<string | undefined> {
  if (keysFile === undefined) return undefined;
  try {
    return await readFile(keysFile, 'utf8');
  } catch (err) {
    return unreadableMark(err);
  }
}

/** Calls `changed` on any event for the file or for a `..`-prefixed entry beside it (the
 * symlinks Kubernetes swaps). Undefined when the directory cannot be watched (it does not
 * exist): reading the file then fails, and that is what gets reported. */
function watchFileIn(path: string, changed: () => void): FSWatcher | undefined {
  const file = resolve(path);
  try {
    return watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file) && !name.startsWith('..')) return;
      changed();
    });
  } catch {
    return undefined;
  }
}

/** The keys file's watch, moved when a reload points identity.keysFile elsewhere. */
class FollowingWatch {
  private path: string | undefined;
  private watcher: FSWatcher | undefined;
  private readonly changed: () => void;

  constructor(changed: () => void) {
    this.changed = changed;
  }

  follow(path: string | undefined): void {
    // The same file again: keep its watch, or try again when its directory could not be watched.
    if (path === this.path && (this.watcher !== undefined || path === undefined)) return;
    this.watcher?.close();
    this.path = path;
    this.watcher = path === undefined ? undefined : watchFileIn(path, this.changed);
  }
}

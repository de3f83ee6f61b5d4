// re2js, loaded the first time a user pattern is checked or compiled, not when the gate starts:
// a config without custom DLP patterns never holds its code (~0.8 MiB of heap, README "Levers
// tried"). Loaded synchronously (require of its CommonJS build) because both callers are
// synchronous: the config schema's check, and a stage's create() at config load. A request
// never reaches here: patterns are compiled when the config is.
import type { RE2JS } from 're2js';

let loaded: typeof RE2JS | undefined;

export function re2js(): typeof RE2JS {
  if (loaded === undefined) {
    const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);
    loaded = (require('re2js') as typeof import('re2js')).RE2JS;
  }
  return loaded;
}

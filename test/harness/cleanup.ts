// vitest setup file for the suites that start gates and Envoys: after each test file, remove
// the temporary folders its harness calls made (test/harness/temp-dirs.ts). Registered before
// the file's own hooks, so it runs after them, once every process using the folders is stopped.
import { afterAll } from 'vitest';
import { removeTempDirs } from './temp-dirs.ts';

afterAll(removeTempDirs);

// Runs a Dockerfile's steps on this machine, without a container engine: each stage gets its own
// directory standing for its root filesystem, WORKDIR and COPY destinations are taken inside it,
// COPY reads the build context (filtered by .dockerignore) or an earlier stage, RUN runs the
// command with sh in the stage's working directory and ENV. The base image is not pulled: this
// machine's Node stands in for it, so the caller checks the versions agree. An instruction this
// runner does not know fails the run rather than being skipped.
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Instructions with line continuations joined and comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] as string;
    const start = i + 1;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]}`;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start}: cannot read "${line}"`);
    out.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start });
  }
  return out;
}

/** .dockerignore patterns (Go filepath.Match with **, last match wins, ! re-includes). */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pat.length; i++) {
        const c = pat[i] as string;
        if (c === '*' && pat[i + 1] === '*') {
          // "**/" matches any number of directories, "**" at the end anything.
          if (pat[i + 2] === '/') {
            re += '(?:.*/)?';
            i += 2;
          } else {
            re += '.*';
            i += 1;
          }
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      // A pattern naming a directory excludes everything under it.
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path: string) => {
    let excluded = false;
    for (const r of rules) if (r.re.test(path)) excluded = !r.negate;
    return excluded;
  };
}

/** The build context: `srcDir`'s files that .dockerignore keeps, copied into `dest`. */
export async function buildContext(srcDir: string, dest: string): Promise<string[]> {
  const ignored = dockerignore(await readFile(join(srcDir, '.dockerignore'), 'utf8').catch(() => ''));
  const kept: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(srcDir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        // Directories are walked even when excluded: a later ! pattern may re-include files.
        if (e.name === '.git' || e.name === 'node_modules' || e.name === '.cache') {
          if (ignored(p)) continue;
        }
        await walk(p);
      } else if (e.isFile() && !ignored(p)) {
        kept.push(p);
        await mkdir(join(dest, rel), { recursive: true });
        await cp(join(srcDir, p), join(dest, p));
      }
    }
  };
  await walk('');
  return kept;
}

export interface Stage {
  name: string;
  from: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  expose: string[];
  entrypoint?: string[];
  cmd?: string[];
}

export interface BuildResult {
  stages: Stage[];
  final: Stage;
  /** Wall seconds per RUN, in order. */
  runs: { line: number; command: string; seconds: number }[];
}

/** Runs every stage of the Dockerfile at `contextDir` into directories under `workDir`. */
export async function buildDockerfile(
  contextDir: string,
  workDir: string,
  opts: { pathPrefix: string; env?: NodeJS.ProcessEnv },
): Promise<BuildResult> {
  const context = join(workDir, 'context');
  await buildContext(contextDir, context);
  const instructions = parseDockerfile(await readFile(join(contextDir, 'Dockerfile'), 'utf8'));
  const stages: Stage[] = [];
  const runs: BuildResult['runs'] = [];
  let st: Stage | undefined;
  const inRoot = (s: Stage, p: string) => join(s.root, isAbsolute(p) ? p : join(s.workdir, p));
  for (const ins of instructions) {
    const where = `Dockerfile:${ins.line}`;
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${where}: FROM ${ins.args}`);
      const name = m[2] ?? String(stages.length);
      st = { name, from: m[1] as string, root: join(workDir, 'stages', name), workdir: '/', env: {}, expose: [] };
      await mkdir(st.root, { recursive: true });
      stages.push(st);
      continue;
    }
    if (!st) throw new Error(`${where}: ${ins.op} before FROM`);
    switch (ins.op) {
      case 'WORKDIR':
        st.workdir = posix.resolve(st.workdir, ins.args);
        await mkdir(join(st.root, st.workdir), { recursive: true });
        break;
      case 'ENV': {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)[= ](.*)$/.exec(ins.args);
        if (!m) throw new Error(`${where}: ENV ${ins.args}`);
        st.env[m[1] as string] = (m[2] as string).replace(/^"(.*)"$/, '$1');
        break;
      }
      case 'COPY': {
        const parts = ins.args.split(/\s+/);
        let fromRoot = context;
        let fromWorkdir = '/';
        while (parts[0]?.startsWith('--')) {
          const flag = parts.shift() as string;
          const m = /^--from=(.+)$/.exec(flag);
          if (!m) throw new Error(`${where}: COPY flag ${flag} is not supported here`);
          const src = stages.find((s) => s.name === m[1]);
          if (!src) throw new Error(`${where}: no stage ${m[1]}`);
          fromRoot = src.root;
          fromWorkdir = src.workdir;
        }
        const dest = parts.pop() as string;
        const destPath = inRoot(st, dest);
        for (const s of parts) {
          const srcPath =
            fromRoot === context ? join(context, s) : join(fromRoot, isAbsolute(s) ? s : join(fromWorkdir, s));
          const info = await stat(srcPath).catch(() => undefined);
          if (!info)
            throw new Error(`${where}: COPY ${s}: not in the ${fromRoot === context ? 'build context' : 'stage'}`);
          // Docker copies a directory's contents; a file into a dest ending in / keeps its name.
          const target = info.isFile() && dest.endsWith('/') ? join(destPath, s.split('/').pop() as string) : destPath;
          await mkdir(info.isFile() ? dirname(target) : target, { recursive: true });
          await cp(srcPath, target, { recursive: true });
        }
        break;
      }
      case 'RUN': {
        const t0 = performance.now();
        try {
          await run('sh', ['-c', ins.args], {
            cwd: join(st.root, st.workdir),
            env: { ...process.env, ...opts.env, ...st.env, PATH: `${opts.pathPrefix}:${process.env.PATH}` },
            maxBuffer: 64 * 1024 * 1024,
          });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string };
          throw new Error(`${where}: RUN ${ins.args} failed:\n${e.stdout ?? ''}${e.stderr ?? String(err)}`);
        }
        runs.push({ line: ins.line, command: ins.args, seconds: Math.round((performance.now() - t0) / 100) / 10 });
        break;
      }
      case 'USER':
        st.user = ins.args;
        break;
      case 'EXPOSE':
        st.expose.push(...ins.args.split(/\s+/));
        break;
      case 'ENTRYPOINT':
        st.entrypoint = JSON.parse(ins.args) as string[];
        break;
      case 'CMD':
        st.cmd = JSON.parse(ins.args) as string[];
        break;
      default:
        throw new Error(`${where}: ${ins.op} is not an instruction this runner knows; teach it or drop it`);
    }
  }
  if (!st) throw new Error('Dockerfile has no FROM');
  return { stages, final: st, runs };
}

/** Files under `dir`, relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  return out;
}

// Runs one of the repository's scripts (scripts/*.mjs) on tiny fixture directories written for
// the test: a fresh directory per call, all removed after the file's tests.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `scripts/<name>.mjs` on `dir`. */
export function runScript(name: string, dir: string): Promise<ScriptResult> {
  const script = fileURLToPath(new URL(`../../scripts/${name}.mjs`, import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [script, dir], (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

/** `check(files)` writes the files into a fresh directory and runs `scripts/<name>.mjs` on it. */
export function scriptOnFixtures(name: string): (files: Record<string, string>) => Promise<ScriptResult> {
  const base = mkdtempSync(join(tmpdir(), `${name}-`));
  let fixtures = 0;
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  return (files) => {
    const dir = join(base, `fixture-${++fixtures}`);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), text);
    }
    return runScript(name, dir);
  };
}

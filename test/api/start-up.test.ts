/**
 * What `npm start` and `npm install` run around the service: the build is incremental (nothing is
 * compiled again when nothing changed), and the install's shim build is quiet when it succeeds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { prettyLogs } from '../../src/logger';

const ROOT = path.resolve(__dirname, '..', '..');
const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

function npmRun(script: string, env: Record<string, string> = {}): { status: number | null; output: string } {
  const run = spawnSync('npm', ['run', script], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('npm start', () => {
  it('builds through the incremental build, which has nothing to do the second time', () => {
    expect(scripts.prestart).toContain('npm run build');
    const first = npmRun('build');
    expect(first).toMatchObject({ status: 0 });
    // tsc's own up-to-date check: a dry run of the same build says what it would compile.
    const dry = execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-b', 'tsconfig.build.json', '--dry', '--verbose'], { cwd: ROOT, encoding: 'utf8' });
    expect(dry).toMatch(/is up to date/);
    expect(dry).not.toMatch(/A non-dry build would build/);
  }, 180_000);
});

describe('the kms bin', () => {
  // In this file, after the build above: two builds of one dist/ at once would collide.
  it('is the built CLI, so that npx kms works in the project directory after npm run build', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    expect(manifest.bin).toEqual({ kms: 'dist/cli.js' });
    // As tsc leaves it in a fresh clone: npm ci ran before there was a dist/ to make executable.
    const bin = path.join(ROOT, 'dist', 'cli.js');
    chmodSync(bin, 0o644);
    expect(npmRun('build')).toMatchObject({ status: 0 });
    expect(statSync(bin).mode & 0o111).toBe(0o111);
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    const help = spawnSync('npx', ['--offline', 'kms', 'help'], { cwd: ROOT, env: process.env, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: kms COMMAND/);
    expect(help.stdout).toContain('kms key create --project ID --alias ALIAS');
  }, 180_000);
});

describe('npm install (postinstall)', () => {
  it('prints no warning when the shim builds', () => {
    const run = npmRun('postinstall');
    expect(run.status).toBe(0);
    expect(run.output).not.toMatch(/warning/i);
  }, 60_000);

  it('warns, and still succeeds, when there is no C compiler', () => {
    const run = npmRun('postinstall', { CC: 'false' });
    expect(run.status).toBe(0);
    expect(run.output).toMatch(/^warning: the PKCS#11 test shim \(bench\/shim\) was not built/m);
  }, 60_000);
});

describe('log format', () => {
  it('is pino-pretty on a terminal when it is installed, JSON otherwise', () => {
    const installed = (): string => '/node_modules/pino-pretty/index.js';
    const missing = (): string => {
      throw new Error('Cannot find module');
    };
    expect(prettyLogs(true, installed)).toBe(true);
    expect(prettyLogs(false, installed)).toBe(false);
    expect(prettyLogs(true, missing)).toBe(false);
  });
});

/**
 * Where a worker's CPU goes, per request, from V8 CPU profiles (`node --cpu-prof`): every sample is
 * charged to one part of the stack (issue 21's table). A sample in JavaScript is charged by the
 * file it runs in; a sample in native code (no file: a C++ builtin, a binding) to the file of the
 * nearest JavaScript caller, except writes (to a socket, to a file) and the PKCS#11 module's
 * calls, which are parts of their own. A profile's samples are wall time while the thread runs
 * JavaScript or native code, including time the kernel gave another process: on a loaded machine
 * they add up to more than the CPU the process used, so the table gives shares, scaled to the CPU
 * time /proc counted (profile.ts). Idle samples are left out; so is the time before the load began and after it
 * ended, when the profile's timestamps allow (the start-up compiles openapi.yaml).
 */

/** The parts of the table, in the order printed. */
export const PARTS = [
  "Node's HTTP and stream internals",
  'socket write (writev)',
  'file writes and syncs (audit log, access log)',
  "express-openapi-validator's route lookup + path-to-regexp",
  'express-openapi-validator otherwise (AJV included)',
  'Express router and application',
  'body parsing (body-parser, raw-body, type-is, iconv)',
  'the PKCS#11 calls (pkcs11js, graphene-pk11)',
  'SQLite (better-sqlite3)',
  'logging (pino)',
  'garbage collection',
  'our own code',
  'crypto and other Node built-ins',
  'other libraries',
  'V8 and native, unattributed',
] as const;
export type Part = (typeof PARTS)[number];

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

/** The .cpuprofile format V8 writes. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Native functions that write: to a socket when called from node's stream code, to a file from node:fs. */
const NATIVE_WRITES = new Set(['writev', 'writeBuffer', 'writeBuffers', 'writeString', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'fsync', 'fdatasync']);
const BODY_PARSING = /node_modules\/(body-parser|raw-body|type-is|iconv-lite|media-typer|content-type|bytes|unpipe|destroy)\//;
const EXPRESS = /node_modules\/(express|router|finalhandler|send|serve-static|accepts|negotiator|fresh|range-parser|proxy-addr|forwarded|parseurl|qs|on-finished|vary|encodeurl|escape-html|cookie|cookie-signature|merge-descriptors|utils-merge|methods|depd|setprototypeof|statuses|http-errors|content-disposition|mime-types|mime-db|etag|ee-first|is-promise)\//;

/** The part a JavaScript frame's file belongs to, or undefined for a frame without a file. */
function partOfUrl(url: string, functionName: string): Part | undefined {
  if (url === '') return undefined;
  if (/node_modules\/(path-to-regexp)\//.test(url)) return "express-openapi-validator's route lookup + path-to-regexp";
  if (url.includes('node_modules/express-openapi-validator/')) {
    return /openapi\.metadata\.js$/.test(url) && /lookupRoute|routeMatcher|applyOpenApiMetadata/.test(functionName)
      ? "express-openapi-validator's route lookup + path-to-regexp"
      : 'express-openapi-validator otherwise (AJV included)';
  }
  if (/node_modules\/(ajv|ajv-formats|ajv-draft-04|fast-uri|fast-deep-equal|json-schema-traverse)\//.test(url)) return 'express-openapi-validator otherwise (AJV included)';
  if (BODY_PARSING.test(url)) return 'body parsing (body-parser, raw-body, type-is, iconv)';
  if (EXPRESS.test(url)) return 'Express router and application';
  if (/node_modules\/(pkcs11js|graphene-pk11)\//.test(url)) return 'the PKCS#11 calls (pkcs11js, graphene-pk11)';
  if (url.includes('node_modules/better-sqlite3/')) return 'SQLite (better-sqlite3)';
  if (/node_modules\/(pino|pino-std-serializers|sonic-boom|fast-redact|quick-format-unescaped|atomic-sleep|on-exit-leak-free|thread-stream|safe-stable-stringify)\//.test(url)) return 'logging (pino)';
  if (url.includes('node_modules/')) return 'other libraries';
  if (/^node:(_http|http|https|net|stream|internal\/(streams|http|stream_base_commons|net|timers|process\/task_queues)|events|timers)/.test(url)) return "Node's HTTP and stream internals";
  if (url.startsWith('node:')) return 'crypto and other Node built-ins';
  if (/\/(dist|src)\//.test(url)) return 'our own code';
  return 'other libraries';
}

/** Per part, the microseconds of CPU in the samples of `profile` between `from` and `to` (µs on the profile's clock). */
export function partsOf(profile: CpuProfile, window?: { from: number; to: number }): Map<Part, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const parentUrl = (id: number): string | undefined => {
    const parent = parentOf.get(id);
    return parent === undefined ? undefined : byId.get(parent)!.callFrame.url;
  };
  const partById = new Map<number, Part | null>();
  const partOfNode = (id: number): Part | null => {
    const known = partById.get(id);
    if (known !== undefined) return known;
    const { callFrame } = byId.get(id)!;
    let part: Part | null;
    if (callFrame.functionName === '(idle)') part = null;
    else if (callFrame.functionName === '(garbage collector)') part = 'garbage collection';
    else if (callFrame.functionName === '(program)' || callFrame.functionName === '(root)') part = 'V8 and native, unattributed';
    else if (callFrame.url === '' && NATIVE_WRITES.has(callFrame.functionName) && parentUrl(id) === 'node:fs') part = 'file writes and syncs (audit log, access log)';
    else if (callFrame.url === '' && NATIVE_WRITES.has(callFrame.functionName)) part = 'socket write (writev)';
    else if (callFrame.url === '' && /^C_[A-Z]/.test(callFrame.functionName)) part = 'the PKCS#11 calls (pkcs11js, graphene-pk11)';
    else {
      part = partOfUrl(callFrame.url, callFrame.functionName) ?? null;
      if (part === null) {
        const parent = parentOf.get(id);
        part = parent === undefined ? 'V8 and native, unattributed' : partOfNode(parent);
        if (part === null) part = 'V8 and native, unattributed';
      }
    }
    partById.set(id, part);
    return part;
  };
  const totals = new Map<Part, number>(PARTS.map((part) => [part, 0]));
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if (window && (time < window.from || time > window.to)) continue;
    // A sample stands for the time since the one before it.
    const part = partOfNode(profile.samples[i]!);
    if (part !== null) totals.set(part, totals.get(part)! + delta);
  }
  return totals;
}

/** The busy time the parts add up to, in µs. */
export function busyMicros(parts: ReadonlyMap<Part, number>): number {
  let sum = 0;
  for (const value of parts.values()) sum += value;
  return sum;
}

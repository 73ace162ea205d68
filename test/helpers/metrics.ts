/**
 * Reads the Prometheus text exposition format (what GET /metrics answers) into samples, so that
 * tests assert exact values: `name{label="value",...} number` lines, comments and blank lines
 * skipped, label values unescaped.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, raw] of (match[2] ?? '').matchAll(LABEL)) labels[name!] = raw!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const value = match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : Number(match[3]);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** The metrics as a lookup: the value of the one sample of `name` whose labels are exactly `labels` (undefined when none). */
export class Metrics {
  constructor(readonly samples: readonly Sample[]) {}

  static parse(text: string): Metrics {
    return new Metrics(parseMetrics(text));
  }

  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const wanted = Object.entries(labels);
    const found = this.samples.filter(
      (sample) => sample.name === name && Object.keys(sample.labels).length === wanted.length && wanted.every(([key, value]) => sample.labels[key] === value),
    );
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} names ${found.length} samples`);
    return found[0]?.value;
  }

  /** Every sample of `name` (each label set once). */
  all(name: string): Sample[] {
    return this.samples.filter((sample) => sample.name === name);
  }

  /** How much `name{labels}` grew since `before` (a missing sample counts as 0). */
  delta(before: Metrics, name: string, labels: Record<string, string> = {}): number {
    return (this.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
  }
}

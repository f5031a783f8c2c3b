import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { LatencySeries, SuiteResult } from './suite.js';

/** The report's head, as `main.ts` assembles it. */
export interface ReportHead {
  readonly when: string;
  readonly durationS: number;
  readonly size: string;
  readonly command: string;
  readonly machine: Readonly<Record<string, string | number>>;
}

/** The markdown printed on stdout (and pasted into the README's performance section). */
export function renderMarkdown(head: ReportHead, results: readonly SuiteResult[]): string {
  const lines: string[] = [];
  const m = head.machine;
  lines.push(
    `Measured ${head.when.slice(0, 10)} with \`${head.command}\` (${head.durationS} s): ` +
      `${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.etcd}, ${m.zookeeper}.`,
    '',
  );
  for (const result of results) {
    lines.push(`### ${result.table.title}`, '');
    lines.push(`| ${result.table.columns.join(' | ')} |`);
    lines.push(`| ${result.table.columns.map(() => '---').join(' | ')} |`);
    for (const row of result.table.rows) lines.push(`| ${row.join(' | ')} |`);
    lines.push('');
    for (const note of result.notes) lines.push(`- ${note}`);
    if (result.notes.length > 0) lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * An SVG chart of latency distributions: one box plot per series (log scale, milliseconds),
 * rendered by Vega-Lite in Node without a browser or canvas.
 */
export async function renderLatencyChart(series: readonly LatencySeries[]): Promise<string> {
  const values = series.flatMap((s) =>
    s.samplesMs.map((ms) => ({ series: s.label, ms: Math.max(ms, 0.01) })),
  );
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Leadership change latency (ms, log scale)',
    width: 560,
    height: { step: 28 },
    data: { values },
    mark: { type: 'boxplot', extent: 'min-max', size: 16 },
    encoding: {
      y: { field: 'series', type: 'nominal', title: null, sort: null, axis: { labelLimit: 440 } },
      x: {
        field: 'ms',
        type: 'quantitative',
        scale: { type: 'log' },
        title: 'milliseconds',
      },
      color: { field: 'series', type: 'nominal', legend: null },
    },
    config: { font: 'sans-serif' },
  };
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * `supar-transform report X.report.json [--html] [-o page.html]`: reads a written report; prints its human
 * summary, or with --html (re)writes its page (default: X.report.html beside it). The page is rendered from
 * the report object itself (src/pages/report-page.ts), so it matches what the transform wrote.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { CliContext } from './main.js';
import { ExitCode, UserInputError } from '../errors.js';
import { writeFileAtomic } from '../onnx/atomic.js';
import { reportHtml } from '../pages/report-page.js';
import { REPORT_FORMAT, summaryText, type TransformReport } from '../report.js';

interface ReportFlags {
  html?: boolean;
  output?: string;
}

export function register(program: Command, _ctx: CliContext): void {
  program
    .command('report <report.json>')
    .description('print a written transform report, or (--html) write it as a self-contained page')
    .option('--html', 'write the report page (default <name>.report.html beside the JSON)')
    .option('-o, --output <file>', 'where to write the page (implies --html)')
    .action((file: string, flags: ReportFlags) => {
      const report = readReportFile(file);
      if (!flags.html && !flags.output) {
        process.stdout.write(summaryText(report));
        return;
      }
      const out = flags.output ?? reportHtmlPathFor(file);
      writeFileAtomic(out, new TextEncoder().encode(reportHtml(report)));
      process.stdout.write(`wrote ${out}\n`);
    });
}

/** `x.report.json` → `x.report.html`; any other `y.json` → `y.html`. */
export function reportHtmlPathFor(file: string): string {
  return /\.json$/i.test(file) ? file.replace(/\.json$/i, '.html') : `${file}.html`;
}

const REQUIRED_ARRAYS = ['tensors', 'attention', 'multipliers', 'ties', 'passes', 'warnings'] as const;

export function readReportFile(file: string): TransformReport {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserInputError(`${file}: cannot read the report (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path`, ExitCode.io);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserInputError(`${file}: not valid JSON (${(e as Error).message}); pass the .report.json the transform wrote`, ExitCode.badInput);
  }
  const r = v as Partial<TransformReport> | null;
  if (r?.format !== REPORT_FORMAT) {
    throw new UserInputError(`${file}: not a transform report (format ${JSON.stringify(r?.format ?? null)}, expected '${REPORT_FORMAT}'); pass the .report.json the transform wrote`, ExitCode.badInput);
  }
  const missing = REQUIRED_ARRAYS.filter((k) => !Array.isArray(r[k]));
  if (!r.settings || !r.summary || !r.input || !r.model || missing.length > 0) {
    throw new UserInputError(`${file}: incomplete report (${missing.length ? `no ${missing.join(', ')} array` : 'no settings, summary, input or model'}); regenerate it with the transform`, ExitCode.badInput);
  }
  return r as TransformReport;
}

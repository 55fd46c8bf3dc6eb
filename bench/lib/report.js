// Turns the fs bench's raw values into statistics and a Markdown table. Pure: no I/O.
// Ratios compare a configuration with the plain directory: the ratio of the medians, and in
// brackets the range of the per-repetition ratios (each rep's runs sat side by side in time).

/** Median of the numbers in `xs` (the mean of the middle two for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Statistics over one cell's per-rep values (null for a failed rep). */
export function cellStats(values) {
  const ok = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (ok.length === 0) return null;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

/** Ratio of medians and the range of paired per-rep ratios against `plain`. */
export function ratioStats(values, plainValues) {
  const cell = cellStats(values);
  const base = cellStats(plainValues);
  if (cell === null || base === null || base.median === 0) return null;
  const paired = values.map((v, i) => {
    const p = plainValues[i];
    return typeof v === 'number' && typeof p === 'number' && p > 0 ? v / p : null;
  }).filter((r) => r !== null);
  return {
    ratio: cell.median / base.median,
    pairedMin: paired.length > 0 ? Math.min(...paired) : null,
    pairedMax: paired.length > 0 ? Math.max(...paired) : null,
  };
}

/** A number with about three significant digits. */
export function fmt(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 100) return String(Math.round(x));
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

const fmtCell = (s) => (s === null ? 'failed' :
  s.n === 1 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`);

const fmtRatio = (r) => {
  if (r === null) return '—';
  const range = r.pairedMin === null || r.pairedMin === r.pairedMax ? ''
    : ` (${r.pairedMin.toFixed(2)}–${r.pairedMax.toFixed(2)})`;
  return `**${r.ratio.toFixed(2)}×**${range}`;
};

/**
 * Markdown table: one row per metric, then the journal rows; for each configuration other
 * than plain a value column and a ratio column. Skipped configurations stay in the table
 * with "skipped" so that its shape does not depend on the machine.
 */
export function renderTable({ metrics, configs, cells, journalRows }) {
  const head = ['workload', 'plain'];
  for (const c of configs.slice(1)) head.push(c.label, 'ratio');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`];
  for (const m of metrics) {
    const plainValues = cells[m.id]?.plain ?? [];
    const row = [`${m.label} (${m.unit})`, fmtCell(cellStats(plainValues))];
    for (const c of configs.slice(1)) {
      if (c.skipped) { row.push('skipped', '—'); continue; }
      const values = cells[m.id]?.[c.id] ?? [];
      row.push(fmtCell(cellStats(values)), fmtRatio(ratioStats(values, plainValues)));
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  for (const j of journalRows) {
    const row = [j.label, '—'];
    for (const c of configs.slice(1)) {
      const values = cells[j.id]?.[c.id];
      row.push(c.skipped || values === undefined ? '—' : fmtCell(cellStats(values)), '—');
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  return lines.join('\n');
}

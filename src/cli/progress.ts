/** Bytes as text with a binary unit: `1.5 GiB`. */
export function bytesText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as `1h02m`, `3m05s` or `7s`. */
export function durationText(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  return `${s}s`;
}

/** One progress sample: what is done and, when known, the total. */
export interface ProgressSample {
  label: string;
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
}

/** The line a progress bar shows for a sample `elapsedMs` after its phase began. Pure. */
export function progressLine(sample: ProgressSample, elapsedMs: number, width = 24): string {
  const rate = elapsedMs > 0 ? sample.bytes / (elapsedMs / 1000) : 0;
  const parts = [sample.label, `${sample.files}${sample.totalFiles === undefined ? ''
    : `/${sample.totalFiles}`} files`, `${bytesText(sample.bytes)}${sample.totalBytes === undefined
    ? '' : `/${bytesText(sample.totalBytes)}`}`, `${bytesText(Math.round(rate))}/s`];
  if (sample.totalBytes !== undefined && sample.totalBytes > 0) {
    const fraction = Math.min(1, sample.bytes / sample.totalBytes);
    const filled = Math.round(fraction * width);
    parts.unshift(`[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`);
    if (rate > 0) parts.push(`ETA ${durationText((sample.totalBytes - sample.bytes) / rate)}`);
  }
  return parts.join('  ');
}

/**
 * A one-line progress bar on a TTY stream (stderr): redrawn in place, cleared at the end.
 * On anything but a TTY it draws nothing.
 */
export class ProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #enabled: boolean;
  #phaseStartedMs = Date.now();
  #label = '';
  #drawn = false;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#enabled = stream.isTTY === true;
  }

  /** Shows a sample; a new label restarts the rate clock. */
  update(sample: ProgressSample): void {
    if (!this.#enabled) return;
    if (sample.label !== this.#label) {
      this.#label = sample.label;
      this.#phaseStartedMs = Date.now();
    }
    const columns = this.#stream.columns ?? 100;
    const line = progressLine(sample, Date.now() - this.#phaseStartedMs).slice(0, columns - 1);
    this.#stream.write(`\r\u001b[2K${line}`);
    this.#drawn = true;
  }

  /** Removes the bar (before the result is printed). */
  clear(): void {
    if (this.#enabled && this.#drawn) this.#stream.write('\r\u001b[2K');
    this.#drawn = false;
  }
}

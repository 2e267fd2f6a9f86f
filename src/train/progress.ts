/** Progress output: a redrawn bar on a TTY, plain lines otherwise (logs, CI). */
export interface ProgressFields { step: number; total: number; loss?: number; lr?: number; tokensPerSecond?: number }

export class Progress {
  private readonly start = Date.now();
  constructor(private readonly out: NodeJS.WriteStream = process.stderr, private readonly label = "train") {}

  get isTTY(): boolean { return this.out.isTTY === true; }

  update(f: ProgressFields, forceLine = false): void {
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = f.step > 0 ? (elapsed / f.step) * (f.total - f.step) : NaN;
    const parts = [
      `${this.label} ${f.step}/${f.total}`,
      f.loss !== undefined ? `loss ${f.loss.toFixed(4)}` : "",
      f.lr !== undefined ? `lr ${f.lr.toExponential(2)}` : "",
      f.tokensPerSecond !== undefined ? `${f.tokensPerSecond.toFixed(0)} tok/s` : "",
      Number.isFinite(eta) ? `ETA ${formatSeconds(eta)}` : "",
    ].filter(Boolean).join("  ");
    if (this.isTTY) {
      const width = 24, filled = Math.round((f.step / Math.max(1, f.total)) * width);
      this.out.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${parts}\x1b[K`);
      if (f.step >= f.total) this.out.write("\n");
    } else if (forceLine) {
      this.out.write(`${parts}\n`);
    }
  }

  /** A message that must not be overwritten by the bar. */
  line(msg: string): void {
    this.out.write(this.isTTY ? `\r\x1b[K${msg}\n` : `${msg}\n`);
  }
}

function formatSeconds(s: number): string {
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

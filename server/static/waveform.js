// Live waveform: per-column min/max of the samples received so far, and a playhead.

const color = (style, name, fallback) => style.getPropertyValue(name).trim() || fallback;

export class Waveform {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.min = new Float32Array(0);
    this.max = new Float32Array(0);
    this.reset(1);
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  // a new stream of `totalSamples` samples (the x axis spans all of them)
  reset(totalSamples) {
    this.total = Math.max(1, totalSamples);
    this.chunks = [];
    this.played = 0;
    this.rebin();
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    if (width !== this.canvas.width || width !== this.min.length) {
      this.canvas.width = width;
      this.canvas.height = Math.round(160 * ratio);
      this.rebin();
    }
  }

  rebin() {
    const width = Math.max(1, this.canvas.width);
    this.min = new Float32Array(width);
    this.max = new Float32Array(width);
    this.columns = 0;
    this.received = 0;
    for (const chunk of this.chunks) this.bin(chunk);
    this.schedule();
  }

  add(floats) {
    this.chunks.push(floats);
    this.bin(floats);
    this.schedule();
  }

  bin(floats) {
    const width = this.min.length;
    for (let i = 0; i < floats.length; i++) {
      const column = Math.min(width - 1, Math.floor(((this.received + i) * width) / this.total));
      while (this.columns <= column) {
        this.min[this.columns] = 0;
        this.max[this.columns] = 0;
        this.columns++;
      }
      const v = floats[i];
      if (v < this.min[column]) this.min[column] = v;
      if (v > this.max[column]) this.max[column] = v;
    }
    this.received += floats.length;
  }

  setPlayed(samples) {
    this.played = samples;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    const { ctx, canvas } = this;
    const w = canvas.width;
    const h = canvas.height;
    const mid = h / 2;
    const style = getComputedStyle(canvas);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = color(style, "--wave-bg", "#f4f6fb");
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = color(style, "--wave-axis", "#c8cedb");
    ctx.fillRect(0, Math.floor(mid), w, 1);
    const playedColumn = (this.played * w) / this.total;
    const fresh = color(style, "--wave-fg", "#3056d3");
    const done = color(style, "--wave-played", "#0f7b5f");
    for (let x = 0; x < this.columns; x++) {
      const top = mid - this.max[x] * mid;
      const height = Math.max(1, (this.max[x] - this.min[x]) * mid);
      ctx.fillStyle = x < playedColumn ? done : fresh;
      ctx.fillRect(x, top, 1, height);
    }
    if (this.played > 0) {
      ctx.fillStyle = color(style, "--wave-head", "#d33");
      ctx.fillRect(Math.min(w - 2, Math.floor(playedColumn)), 0, 2, h);
    }
  }
}

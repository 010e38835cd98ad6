// AudioWorklet processor: plays float PCM pushed from the page while it arrives.
//
// Messages in:  {type: "pcm", samples: Float32Array}   append (at the source rate)
//               {type: "rate", sourceRate}              the stream's rate, if it changed
//               {type: "end"}                           no more data: report when drained
//               {type: "stop"}                          drop what is queued, go silent
// Messages out: {type: "progress" | "drained" | "stopped", received, played, underruns}
//   received: source samples this processor was given; played: source samples rendered.
// The source rate comes as processorOptions.sourceRate; when it differs from the context
// rate, samples are resampled by linear interpolation. Playback starts (and restarts after
// running dry, counted in `underruns`) once `prebufferSeconds` of audio is queued, or the
// stream has ended.

const REPORT_EVERY = 16; // render quanta (~43 ms at 48 kHz)

class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const sourceRate = options.processorOptions?.sourceRate || sampleRate;
    this.step = sourceRate / sampleRate; // source samples per output sample
    this.prebuffer = Math.ceil((options.processorOptions?.prebufferSeconds ?? 0.05) * sourceRate);
    this.buffering = true;
    this.buffer = new Float32Array(1 << 15); // ring buffer, grows by doubling
    this.written = 0; // absolute source index of the next sample to write
    this.position = 0; // absolute (fractional) source index of the next output sample
    this.ended = false;
    this.stopped = false;
    this.underruns = 0;
    this.quanta = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(msg) {
    if (msg.type === "pcm") {
      if (!this.stopped) this.push(msg.samples);
    } else if (msg.type === "rate") {
      this.step = msg.sourceRate / sampleRate;
    } else if (msg.type === "end") {
      this.ended = true;
    } else if (msg.type === "stop") {
      this.stopped = true;
      this.report("stopped");
    }
  }

  push(samples) {
    const needed = this.written + samples.length - Math.floor(this.position) + 2;
    if (needed > this.buffer.length) this.grow(needed);
    const mask = this.buffer.length - 1;
    for (let i = 0; i < samples.length; i++) this.buffer[(this.written + i) & mask] = samples[i];
    this.written += samples.length;
  }

  grow(needed) {
    let size = this.buffer.length;
    while (size < needed) size *= 2;
    const bigger = new Float32Array(size);
    const oldMask = this.buffer.length - 1;
    const start = Math.max(0, Math.floor(this.position) - 1);
    for (let i = start; i < this.written; i++) bigger[i & (size - 1)] = this.buffer[i & oldMask];
    this.buffer = bigger;
  }

  played() {
    return Math.min(this.written, Math.floor(this.position));
  }

  report(type) {
    this.port.postMessage({ type, received: this.written, played: this.played(),
                            underruns: this.underruns });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    if (this.stopped) {
      out.fill(0);
      return false; // let the node be collected
    }
    if (this.buffering) {
      if (this.written - this.position < this.prebuffer && !this.ended) {
        out.fill(0);
        return true;
      }
      this.buffering = false;
    }
    const mask = this.buffer.length - 1;
    let i = 0;
    if (this.step === 1) {
      const available = Math.min(out.length, this.written - this.position);
      for (; i < available; i++) out[i] = this.buffer[(this.position + i) & mask];
      this.position += available;
    } else {
      for (; i < out.length; i++) {
        const p = this.position;
        const k = Math.floor(p);
        if (k >= this.written || (k + 1 >= this.written && !this.ended)) break;
        const a = this.buffer[k & mask];
        const b = k + 1 < this.written ? this.buffer[(k + 1) & mask] : 0;
        out[i] = a + (b - a) * (p - k);
        this.position = p + this.step;
      }
    }
    if (i < out.length) {
      out.fill(0, i);
      if (this.ended && this.played() >= this.written) {
        this.position = this.written;
        this.report("drained");
        return false;
      }
      this.underruns++;
      this.buffering = true;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (++this.quanta % REPORT_EVERY === 0) this.report("progress");
    return true;
  }
}

registerProcessor("pcm-player", PcmPlayer);

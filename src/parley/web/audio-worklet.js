// Audio on the page's 24 kHz AudioContext: the microphone out as pcm16 chunks, the answer in and played.

const CAPTURE_CHUNK = 960; // 40 ms at 24 kHz: small enough for quick turn detection, few enough events
const REPORT_EVERY = 10; // blocks of 128 samples between playback reports (about 50 ms)

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunk = new Int16Array(CAPTURE_CHUNK);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.chunk[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === CAPTURE_CHUNK) {
        this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
        this.chunk = new Int16Array(CAPTURE_CHUNK);
        this.filled = 0;
      }
    }
    return true;
  }
}

// Plays queued {item, samples} chunks in order and reports how much of each item has been heard,
// which the page needs to truncate an interrupted answer to what the caller actually heard.
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.offset = 0;
    this.played = {}; // item id -> samples played
    this.blocks = 0;
    this.port.onmessage = (event) => {
      if (event.data.type === "clear") {
        this.queue = [];
        this.offset = 0;
        this.report(true);
      } else {
        this.queue.push(event.data);
      }
    };
  }

  report(drained) {
    this.port.postMessage({ played: { ...this.played }, drained });
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (written < out.length && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(out.length - written, head.samples.length - this.offset);
      out.set(head.samples.subarray(this.offset, this.offset + n), written);
      this.played[head.item] = (this.played[head.item] || 0) + n;
      written += n;
      this.offset += n;
      if (this.offset === head.samples.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    if (written > 0) {
      const drained = this.queue.length === 0;
      if (drained || ++this.blocks % REPORT_EVERY === 0) this.report(drained);
    }
    return true;
  }
}

registerProcessor("parley-capture", CaptureProcessor);
registerProcessor("parley-playback", PlaybackProcessor);

// Audio thread: copies the microphone's mono samples to the main thread in blocks of 512 frames
// (about 11 ms), which batches them into ~40 ms packets. Nothing is processed here, so the audio
// thread never waits on the network or on the page.

const BLOCK_FRAMES = 512;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK_FRAMES);
    this.fill = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush" && this.fill > 0) {
        this.port.postMessage(this.block.slice(0, this.fill));
        this.fill = 0;
      }
    };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input connected yet: keep the node alive
    let offset = 0;
    while (offset < channel.length) {
      const n = Math.min(channel.length - offset, BLOCK_FRAMES - this.fill);
      this.block.set(channel.subarray(offset, offset + n), this.fill);
      this.fill += n;
      offset += n;
      if (this.fill === BLOCK_FRAMES) {
        const out = this.block;
        this.block = new Float32Array(BLOCK_FRAMES);
        this.fill = 0;
        this.port.postMessage(out, [out.buffer]);
      }
    }
    return true;
  }
}

registerProcessor("capture-processor", CaptureProcessor);

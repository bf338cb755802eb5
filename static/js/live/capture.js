// Microphone: device list, AudioWorklet capture into 40 ms s16le packets, and the input level meter.

import { $, cfg, state } from "./state.js";

// --- microphone list ------------------------------------------------------------------------------

export async function listMicrophones() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const select = $("mic");
  const chosen = select.value;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  select.innerHTML = "";
  const labelled = devices.filter((d) => d.deviceId && d.deviceId !== "default" && d.label);
  const def = document.createElement("option");
  def.value = "";
  const defaultDevice = devices.find((d) => d.deviceId === "default");
  def.textContent = defaultDevice && defaultDevice.label ? `System default (${defaultDevice.label.replace(/^Default - /, "")})` : "System default microphone";
  select.append(def);
  labelled.forEach((d, i) => {
    const option = document.createElement("option");
    option.value = d.deviceId;
    option.textContent = d.label || `Microphone ${i + 1}`;
    select.append(option);
  });
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// --- capture: AudioWorklet -> 40 ms s16le packets ----------------------------------------------------

function encodePacket(samples, sampleRate) {
  const meta = new TextEncoder().encode(
    JSON.stringify({ sampleRate, channels: 1, format: "pcm_s16le", frames: samples.length }),
  );
  const buffer = new ArrayBuffer(4 + meta.length + samples.length * 2);
  const view = new DataView(buffer);
  view.setUint32(0, meta.length, true);
  new Uint8Array(buffer, 4, meta.length).set(meta);
  let offset = 4 + meta.length;
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    offset += 2;
  }
  return buffer;
}

export class Capture {
  constructor(onPacket, onLost) {
    this.onPacket = onPacket;
    this.onLost = onLost; // the track ended: unplugged, or taken by another app
  }

  async start(deviceId, cleanup) {
    // The browser's echo cancellation, noise suppression and gain control are optional: they help in
    // noisy rooms and on laptop speakers, and the model copes without them.
    const audio = { channelCount: 1, echoCancellation: cleanup, noiseSuppression: cleanup, autoGainControl: cleanup };
    if (deviceId) audio.deviceId = { exact: deviceId };
    this.stream = await navigator.mediaDevices.getUserMedia({ audio });
    // The browser's own rate (the server resamples); outside the protocol's 8-48 kHz, ask for 48 kHz.
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    if (this.ctx.sampleRate > 48000 || this.ctx.sampleRate < 8000) {
      await this.ctx.close();
      this.ctx = new AudioContext({ latencyHint: "interactive", sampleRate: 48000 });
    }
    await this.ctx.audioWorklet.addModule(cfg.workletUrl);
    this.rate = this.ctx.sampleRate;
    this.packetFrames = Math.round((this.rate * cfg.packetMs) / 1000);
    this.buffer = new Float32Array(this.packetFrames);
    this.fill = 0;
    this.source = this.ctx.createMediaStreamSource(this.stream);
    // No outputs: the node is a sink the browser keeps pulling; nothing is played back.
    this.node = new AudioWorkletNode(this.ctx, "capture-processor", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
    });
    this.node.port.onmessage = (event) => this.take(event.data);
    this.source.connect(this.node);
    if (this.ctx.state !== "running") await this.ctx.resume();
    const track = this.stream.getAudioTracks()[0];
    this.label = track ? track.label : "";
    track?.addEventListener("ended", () => this.onLost());
  }

  take(frames) {
    let offset = 0;
    while (offset < frames.length) {
      const n = Math.min(frames.length - offset, this.packetFrames - this.fill);
      this.buffer.set(frames.subarray(offset, offset + n), this.fill);
      this.fill += n;
      offset += n;
      if (this.fill === this.packetFrames) {
        this.emit(this.buffer);
        this.fill = 0;
      }
    }
  }

  emit(samples) {
    let sum = 0;
    let peak = 0;
    for (let i = 0; i < samples.length; i++) {
      const v = samples[i];
      sum += v * v;
      const a = Math.abs(v);
      if (a > peak) peak = a;
    }
    const rms = Math.sqrt(sum / samples.length);
    this.onPacket(encodePacket(samples, this.rate), samples.length / this.rate, rms, peak);
  }

  async stop() {
    if (this.node) {
      // Take the last few milliseconds still in the worklet's block.
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 80);
        this.node.port.onmessage = (event) => {
          this.take(event.data);
          clearTimeout(timer);
          resolve();
        };
        this.node.port.postMessage("flush");
      });
      if (this.fill > 0) this.emit(this.buffer.subarray(0, this.fill));
      this.fill = 0;
      this.node.port.onmessage = null;
      this.node = null;
    }
    this.source?.disconnect();
    this.source = null;
    // Always release the microphone, also when starting failed half-way.
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    if (this.ctx) await this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}

// --- level meter --------------------------------------------------------------------------------------

export function onLevel(rms, peak) {
  // -60 dBFS .. 0 dBFS onto 0..1, fast attack and slower release.
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  const value = Math.min(1, Math.max(0, (db + 60) / 60));
  state.level = value > state.level ? value : state.level * 0.85 + value * 0.15;
  const peakDb = 20 * Math.log10(Math.max(peak, 1e-6));
  const peakValue = Math.min(1, Math.max(0, (peakDb + 60) / 60));
  state.peak = Math.max(peakValue, state.peak - 0.01);
  state.lastDb = db;
}

export function drawLevel() {
  $("level-fill").style.transform = `scaleX(${state.level.toFixed(3)})`;
  const peak = $("level-peak");
  peak.style.left = `calc(${(state.peak * 100).toFixed(1)}% - 2px)`;
  peak.style.opacity = state.peak > 0.02 ? "0.8" : "0";
  $("level-text").textContent = state.capture && state.lastDb != null ? `${Math.max(-60, state.lastDb).toFixed(0)} dB` : "—";
  if (!state.capture) {
    state.level *= 0.8;
    state.peak *= 0.9;
  }
  requestAnimationFrame(drawLevel);
}

// Live transcription page: microphone capture through an AudioWorklet, ~40 ms packets on
// /ws/transcribe ([u32 LE metadata length][JSON metadata][PCM s16le]), and the transcript view:
// interim ("realtime") text shown muted and replaced in place by the final text of the same segment.

const cfg = JSON.parse(document.getElementById("live-config").textContent);
const $ = (id) => document.getElementById(id);

const MAX_RECONNECTS = 8;
const MAX_QUEUED_SECONDS = 10; // audio kept while reconnecting, sent once the server listens again
const STOP_TIMEOUT_MS = 15000;
const PING_EVERY_MS = 5000;

// What each close code means to the person at the microphone, and whether trying again can help.
const CLOSE_CODES = {
  4001: { retry: false, title: "You are signed out", text: "Sign in again to continue transcribing.", login: true },
  4003: { retry: false, title: "Not allowed to stream", text: "This account may not stream audio." },
  4029: { retry: false, title: "Too many live sessions", text: "You already have the most live sessions your plan allows. Stop one in another tab or device, then press Start again." },
  4002: { retry: false, title: "Monthly allowance used up", text: "Your audio allowance for this month is used up. It renews at the start of next month.", usage: true },
  1013: { retry: true, title: "The server is busy", text: "The server is at capacity right now." },
  1008: { retry: false, title: "Connection refused by the server", text: "The audio stream looked wrong to the server (malformed messages, or audio much faster than real time)." },
  1009: { retry: false, title: "Audio packet too large", text: "An audio packet was larger than the server accepts." },
  1011: { retry: true, title: "Server error", text: "The server hit an internal error." },
  1012: { retry: true, title: "The server is restarting", text: "Your text so far is saved." },
  1001: { retry: true, title: "The server went away", text: "Your text so far is saved." },
  1006: { retry: true, title: "Connection lost", text: "The connection to the server dropped." },
};

const EVENT_TEXT = {
  not_authenticated: "You are signed out. Sign in again to continue.",
  too_many_streams: "You already have the most live sessions your plan allows.",
  quota_exhausted: "Your monthly audio allowance is used up.",
  server_at_capacity: "The server is at capacity; trying again shortly.",
  inference_unavailable: "The speech model is not available on the server right now.",
  unsupported_language: "The model does not support the chosen language.",
  max_session_length: "This session reached the longest length allowed, so it was saved and stopped.",
  server_shutdown: "The server is restarting. Your text so far is saved; reconnecting…",
  too_fast: "Audio arrived much faster than real time, so the server stopped this session.",
  too_many_errors: "Too many malformed messages reached the server, so it stopped this session.",
  message_too_big: "An audio packet was larger than the server accepts.",
};

const state = {
  phase: "loading", // loading | ready | starting | recording | reconnecting | stopping | unavailable
  modelReady: false,
  ws: null,
  sessionId: null,
  sessions: [], // every server session this recording produced (a reconnect opens a new one)
  listening: false,
  capture: null,
  queue: [], // [{data, t, seconds}] packets waiting for a listening server
  queuedSeconds: 0,
  capturedSeconds: 0, // audio produced since Start (the clock of the transcript)
  offset: 0, // capture time at which the current server session's audio starts
  attempt: 0,
  reconnectTimer: null,
  countdownTimer: null,
  stopTimer: null,
  pingTimer: null,
  tickTimer: null,
  startedAt: 0,
  intentionalClose: false,
  lastServerError: null,
  lines: new Map(), // `${sessionId}:${segmentId}` -> {el, final, text, start, end}
  finals: [], // [{start, end, text}] in arrival order
  latencies: [],
  rttMs: null,
  remaining: cfg.remainingSeconds,
  level: 0,
  peak: 0,
  counts: {}, // events received, by type (shown to tests through window.scribeLive)
};

// --- small helpers ---------------------------------------------------------------------------

function clock(seconds) {
  const s = Math.max(0, seconds || 0);
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}:${rest.toFixed(1).padStart(4, "0")}`;
}

function elapsedText(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 2200);
}

// --- status display ----------------------------------------------------------------------------

// The label is a live region, so it changes only with the state; a ticking countdown goes in
// `detail`, which screen readers skip.
function setConn(tone, label, detail = "") {
  $("conn").dataset.tone = tone;
  if ($("conn-label").textContent !== label) $("conn-label").textContent = label;
  $("conn-detail").textContent = detail;
}

function setReadiness(kind, title, text) {
  const box = $("readiness");
  box.dataset.state = kind;
  // SVG elements have no `hidden` property: toggle the attribute.
  box.querySelector(".i-loading").toggleAttribute("hidden", kind !== "loading");
  box.querySelector(".i-ready").toggleAttribute("hidden", kind !== "ready");
  box.querySelector(".i-error").toggleAttribute("hidden", kind !== "error");
  $("readiness-title").textContent = title;
  $("readiness-text").textContent = text;
}

function setPhase(phase, detail) {
  state.phase = phase;
  const button = $("rec-button");
  const recordingLike = phase === "recording" || phase === "reconnecting" || phase === "starting";
  button.classList.toggle("is-stop", recordingLike || phase === "stopping");
  button.classList.toggle("is-live", phase === "recording");
  $("rec-icon-start").toggleAttribute("hidden", recordingLike || phase === "stopping");
  $("rec-icon-stop").toggleAttribute("hidden", !(recordingLike || phase === "stopping"));
  button.disabled = phase === "loading" || phase === "stopping" || phase === "unavailable";
  const title = recordingLike ? "Stop" : phase === "stopping" ? "Finishing…" : "Start";
  $("rec-title").textContent = title;
  $("rec-button-text").textContent = recordingLike ? "Stop transcribing" : "Start transcribing";
  button.setAttribute("aria-label", recordingLike ? "Stop transcribing" : "Start transcribing");
  const sub = {
    loading: "Waiting for the speech model…",
    ready: "Ready when you are",
    starting: "Connecting…",
    recording: "Listening — speak now",
    reconnecting: "Reconnecting; your audio is kept",
    stopping: "Finishing the last sentence…",
    unavailable: "Not available",
  }[phase];
  $("rec-sub").textContent = detail || sub;
  const locked = recordingLike || phase === "stopping";
  for (const id of ["mic", "opt-interim", "opt-words", "opt-cleanup"]) $(id).disabled = locked;
  if (!locked) $("opt-language").disabled = $("opt-language").options.length < 2;
  else $("opt-language").disabled = true;
  $("options-help").textContent = locked ? "Options are fixed while a session runs." : "Options apply when you press Start.";
  $("clear-btn").disabled = !(phase === "recording" && state.listening);
  if (phase === "ready") setConn("ok", "Ready");
  if (phase === "recording") setConn("live", "Live");
  if (phase === "stopping") setConn("busy", "Saving…");
}

function setVad(kind) {
  const el = $("vad");
  el.dataset.state = kind;
  $("vad-text").textContent = { idle: "Idle", speaking: "Speaking", transcribing: "Transcribing" }[kind];
}

function showLatency(ms) {
  const el = $("latency");
  if (ms == null) {
    el.textContent = "—";
    el.className = "meter-value";
    return;
  }
  el.className = "meter-value " + (ms < 1000 ? "latency-good" : ms < 2500 ? "latency-ok" : "latency-slow");
  el.innerHTML = "";
  el.append(ms < 1000 ? String(Math.round(ms)) : (ms / 1000).toFixed(1));
  const unit = document.createElement("small");
  unit.textContent = ms < 1000 ? "ms" : "s";
  el.append(unit);
  const sorted = [...state.latencies].sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : ms;
  const rtt = state.rttMs == null ? "" : `; network round trip ${Math.round(state.rttMs)} ms`;
  el.title = `End of speech to final text: last ${Math.round(ms)} ms, median ${Math.round(median)} ms${rtt}`;
}

// --- alerts ------------------------------------------------------------------------------------------

const ICONS = {
  error: '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M12 8v5M12 16h.01"/></svg>',
  warning: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3 2 20h20L12 3Z"/><path d="M12 10v4M12 17h.01"/></svg>',
  info: '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M12 11v5M12 8h.01"/></svg>',
};

function showAlert(kind, title, text, { key, link } = {}) {
  const box = $("alerts");
  if (key) box.querySelector(`[data-key="${key}"]`)?.remove();
  const el = document.createElement("div");
  el.className = `notice notice-${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  if (key) el.dataset.key = key;
  el.innerHTML = ICONS[kind] || ICONS.info;
  const body = document.createElement("div");
  body.className = "notice-body";
  const strong = document.createElement("strong");
  strong.textContent = title;
  body.append(strong);
  if (text) body.append(document.createTextNode(text));
  if (link) {
    body.append(" ");
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    body.append(a);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "dismiss";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => el.remove());
  el.append(body, close);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  return el;
}

function clearAlert(key) {
  $("alerts").querySelector(`[data-key="${key}"]`)?.remove();
}

// --- readiness: the model must be loaded before Start is offered ----------------------------------

async function pollReadiness() {
  if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
    setPhase("unavailable", "Microphone capture is not available here");
    setConn("error", "Unavailable");
    setReadiness("error", "Microphone not available", "Open this page over https (or on localhost) in a current browser.");
    showAlert("error", "This browser cannot capture the microphone here.", " Live transcription needs a secure page (https, or localhost) and a browser with AudioWorklet support.");
    return;
  }
  let delay = 1000;
  for (;;) {
    try {
      const response = await fetch(cfg.warmupUrl, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.redirected || response.status === 403 || response.status === 401) {
        setConn("error", "Signed out");
        setReadiness("error", "You are signed out", "Sign in again to use the live page.");
        setPhase("unavailable", "Sign in again to continue");
        showAlert("error", "You are signed out.", " ", { key: "auth", link: { href: cfg.loginUrl + "?next=" + encodeURIComponent(location.pathname), text: "Sign in" } });
        return;
      }
      const body = await response.json();
      if (body.ready) {
        state.modelReady = true;
        const lanes = body.lanes || [];
        const text = lanes.length === 1 && lanes[0] === "shared"
          ? "One lane serves final and draft text"
          : lanes.length ? `Lanes loaded: ${lanes.join(", ")}` : "Loaded and waiting";
        setReadiness("ready", "Speech model ready", text);
        if (state.phase === "loading") setPhase("ready");
        clearAlert("model");
        return;
      }
      if (body.error) {
        setReadiness("error", "The speech model failed to load", body.error);
        setConn("error", "Model unavailable");
        showAlert("error", "The speech model could not be loaded.", " Retrying in a few seconds.", { key: "model" });
        delay = 5000;
      } else {
        setConn("busy", "Loading the speech model…");
        setReadiness("loading", "Loading the speech model", "First load takes a few seconds");
      }
    } catch (err) {
      setConn("error", "Server unreachable");
      setReadiness("error", "Server unreachable", "Retrying…");
      delay = Math.min(delay * 2, 8000);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function refreshHealth() {
  try {
    const response = await fetch(cfg.healthUrl, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (body.activeSessions != null) $("server-load").textContent = `${body.activeSessions} of ${body.maxSessions}`;
  } catch (err) {
    $("server-load").textContent = "unknown";
  }
}

// --- microphone list ------------------------------------------------------------------------------

async function listMicrophones() {
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

class Capture {
  constructor(onPacket) {
    this.onPacket = onPacket;
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
    track?.addEventListener("ended", () => onMicrophoneLost());
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

function onLevel(rms, peak) {
  // -60 dBFS .. 0 dBFS onto 0..1, fast attack and slower release.
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  const value = Math.min(1, Math.max(0, (db + 60) / 60));
  state.level = value > state.level ? value : state.level * 0.85 + value * 0.15;
  const peakDb = 20 * Math.log10(Math.max(peak, 1e-6));
  const peakValue = Math.min(1, Math.max(0, (peakDb + 60) / 60));
  state.peak = Math.max(peakValue, state.peak - 0.01);
  state.lastDb = db;
}

function drawLevel() {
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

// --- transcript view ----------------------------------------------------------------------------------

function transcriptNearBottom() {
  const box = $("transcript-scroll");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollTranscript(wasNearBottom) {
  if (wasNearBottom) {
    const box = $("transcript-scroll");
    box.scrollTop = box.scrollHeight;
  }
}

function updateTranscriptChrome() {
  const hasLines = $("transcript").children.length > 0;
  $("transcript-empty").hidden = hasLines;
  const hasText = state.finals.length > 0;
  $("copy-btn").disabled = !hasText;
  $("download-btn").disabled = !hasText;
  const words = state.finals.reduce((n, f) => n + f.text.split(/\s+/).filter(Boolean).length, 0);
  $("transcript-sub").textContent = hasText
    ? `${state.finals.length} line${state.finals.length === 1 ? "" : "s"} · ${words} word${words === 1 ? "" : "s"}`
    : "Final text appears here as you pause.";
}

function lineKey(event) {
  return `${event.sessionId || state.sessionId}:${event.segmentId}`;
}

function timeLabel(start, end) {
  const span = document.createElement("span");
  span.className = "seg-time";
  span.textContent = end != null ? `${clock(start)} – ${clock(end)}` : clock(start);
  return span;
}

function onRealtime(event) {
  if (!event.segmentId) return;
  const key = lineKey(event);
  let line = state.lines.get(key);
  if (line && line.final) return; // a late draft after the final: the final stands
  const near = transcriptNearBottom();
  if (!line) {
    const el = document.createElement("li");
    el.className = "line interim";
    // Drafts change several times a second; screen readers hear the final line only.
    el.setAttribute("aria-hidden", "true");
    el.dataset.segment = event.segmentId;
    const start = state.openStarts.get(key);
    el.append(timeLabel(start != null ? state.offsetFor(event) + start : state.capturedSeconds));
    const p = document.createElement("p");
    p.className = "line-text";
    el.append(p);
    $("transcript").append(el);
    line = { el, final: false };
    state.lines.set(key, line);
  }
  const p = line.el.querySelector(".line-text");
  p.innerHTML = "";
  const stable = event.stableText ?? event.text ?? "";
  const unstable = event.unstableText ?? "";
  p.append(document.createTextNode(stable));
  if (unstable) {
    if (stable) p.append(" ");
    const u = document.createElement("span");
    u.className = "unstable";
    u.textContent = unstable;
    p.append(u);
  }
  updateTranscriptChrome();
  scrollTranscript(near);
}

function onFinal(event) {
  const key = lineKey(event);
  const existing = state.lines.get(key);
  const near = transcriptNearBottom();
  const text = (event.text || "").trim();
  if (!text) {
    // Noise that turned out to be no words: drop its draft.
    existing?.el.remove();
    state.lines.delete(key);
    updateTranscriptChrome();
    return;
  }
  const offset = state.offsetFor(event);
  const start = offset + (event.start || 0);
  const end = offset + (event.end || 0);
  const el = document.createElement("li");
  el.className = "line final";
  el.dataset.segment = event.segmentId;
  el.append(timeLabel(start, end));
  const p = document.createElement("p");
  p.className = "line-text";
  if (Array.isArray(event.words) && event.words.length) {
    event.words.forEach((w, i) => {
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = i === 0 ? w.word.trimStart() : w.word;
      span.title = `${clock(start + (w.start || 0))}${w.probability != null ? ` · ${(w.probability * 100).toFixed(0)}%` : ""}`;
      p.append(span);
    });
  } else {
    p.textContent = text;
  }
  el.append(p);
  // The final replaces the draft of the same segment where it stands.
  if (existing && existing.el.isConnected) existing.el.replaceWith(el);
  else $("transcript").append(el);
  state.lines.set(key, { el, final: true, text, start, end });
  state.finals.push({ key, start, end, text });
  if (event.latencyMs != null) {
    state.latencies.push(event.latencyMs);
    showLatency(event.latencyMs);
  }
  updateTranscriptChrome();
  scrollTranscript(near);
}

function transcriptText({ timed = false } = {}) {
  const ordered = [...state.finals].sort((a, b) => a.start - b.start);
  if (!timed) return ordered.map((f) => f.text).join("\n");
  return ordered.map((f) => `[${clock(f.start)} – ${clock(f.end)}] ${f.text}`).join("\n");
}

async function copyTranscript() {
  const text = transcriptText();
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast("Transcript copied");
}

function downloadTranscript() {
  const blob = new Blob([transcriptText({ timed: true }) + "\n"], { type: "text/plain;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, "").replace("T", "-");
  a.href = url;
  a.download = `transcript-${stamp}.txt`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  toast("Transcript downloaded");
}

function clearTranscript() {
  if (state.ws && state.listening) state.ws.send(JSON.stringify({ type: "clear" }));
  resetTranscript();
}

function resetTranscript() {
  $("transcript").innerHTML = "";
  state.lines.clear();
  state.finals = [];
  state.latencies = [];
  showLatency(null);
  updateTranscriptChrome();
}

// --- connection --------------------------------------------------------------------------------------

state.openStarts = new Map(); // segment key -> start (server seconds) from timeline events
state.sessionOffsets = new Map(); // sessionId -> capture time where its audio starts
state.offsetFor = (event) => state.sessionOffsets.get(event.sessionId || state.sessionId) ?? 0;

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${cfg.wsPath}`;
}

function sessionOptions() {
  const options = {
    interimResults: $("opt-interim").checked,
    wordTimestamps: $("opt-words").checked,
  };
  const language = $("opt-language").value;
  if (language) options.language = language;
  return options;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  state.listening = false;
  state.lastServerError = null;
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.addEventListener("open", () => {
    if (ws === state.ws) setConn("busy", state.attempt ? "Reconnected, starting…" : "Connected, starting…");
  });
  ws.addEventListener("message", (event) => {
    if (ws !== state.ws || typeof event.data !== "string") return;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    onEvent(ws, data);
  });
  ws.addEventListener("close", (event) => onClose(ws, event));
}

function onEvent(ws, event) {
  state.counts[event.type] = (state.counts[event.type] || 0) + 1;
  switch (event.type) {
    case "hello":
      state.sessionId = event.sessionId;
      state.sessions.push(event.sessionId);
      if (event.limits && event.limits.remainingMonthlySeconds != null) {
        state.remaining = event.limits.remainingMonthlySeconds;
        showRemaining();
      }
      break;
    case "ready":
      ws.send(JSON.stringify({ type: "start", options: sessionOptions() }));
      break;
    case "status":
      if (event.state === "listening") onListening();
      else if (event.state === "stopped" && state.phase === "stopping") finishStop();
      break;
    case "realtime":
      onRealtime(event);
      break;
    case "final":
      onFinal(event);
      setVad(state.openStarts.size ? "speaking" : "idle");
      break;
    case "timeline":
      onTimeline(event);
      break;
    case "warning":
      if (event.code === "already_started") break;
      showAlert("warning", EVENT_TEXT[event.code] || event.message || "Warning from the server.", "", { key: event.code });
      break;
    case "error":
      state.lastServerError = event;
      if (event.where === "connect") break; // the close that follows explains it
      showAlert("error", EVENT_TEXT[event.code] || event.message || "The server reported an error.", "", { key: event.code });
      break;
    case "clear":
      break;
    case "pong":
      if (event.echo != null) state.rttMs = performance.now() - Number(event.echo);
      break;
    default:
      break;
  }
}

function onTimeline(event) {
  const key = lineKey(event);
  if (event.event === "recording_started") {
    if (event.segment && event.segment.start != null) state.openStarts.set(key, event.segment.start);
    setVad("speaking");
  } else if (event.event === "recording_ended" || event.event === "transcription_started") {
    state.openStarts.delete(key);
    setVad("transcribing");
  } else if (event.event === "final_transcript") {
    setVad(state.openStarts.size ? "speaking" : "idle");
  }
}

function onListening() {
  state.listening = true;
  state.sessionOffsets.set(state.sessionId, state.queue.length ? state.queue[0].t : state.capturedSeconds);
  if (state.attempt) toast("Reconnected");
  state.attempt = 0;
  clearAlert("connection");
  for (const packet of state.queue) state.ws.send(packet.data);
  state.queue = [];
  state.queuedSeconds = 0;
  if (state.phase === "starting" || state.phase === "reconnecting") setPhase("recording");
  showSessionFoot();
  refreshHealth();
  clearInterval(state.pingTimer);
  state.pingTimer = setInterval(() => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ type: "ping", id: performance.now() }));
    }
  }, PING_EVERY_MS);
}

function onPacket(data, seconds, rms, peak) {
  onLevel(rms, peak);
  const t = state.capturedSeconds;
  state.capturedSeconds += seconds;
  if (state.phase === "recording" || state.phase === "starting" || state.phase === "reconnecting") {
    state.remaining = Math.max(0, state.remaining - seconds);
  }
  const ws = state.ws;
  if (ws && state.listening && ws.readyState === WebSocket.OPEN) {
    ws.send(data);
    return;
  }
  if (state.phase === "stopping" && !state.listening) return;
  state.queue.push({ data, t, seconds });
  state.queuedSeconds += seconds;
  while (state.queuedSeconds > MAX_QUEUED_SECONDS && state.queue.length) {
    state.queuedSeconds -= state.queue.shift().seconds;
  }
}

function closeInfo(code) {
  const known = CLOSE_CODES[code];
  if (known) return known;
  if (code >= 4000) return { retry: false, title: "The server ended the session", text: `Close code ${code}.` };
  return { retry: true, title: "Connection lost", text: "The connection to the server dropped." };
}

function onClose(ws, event) {
  if (ws !== state.ws) return;
  state.ws = null;
  state.listening = false;
  clearInterval(state.pingTimer);
  if (state.intentionalClose) {
    state.intentionalClose = false;
    return;
  }
  if (state.phase === "stopping") {
    finishStop();
    return;
  }
  if (!["starting", "recording", "reconnecting"].includes(state.phase)) return;
  const info = closeInfo(event.code);
  const serverError = state.lastServerError;
  if (event.code === 1000) {
    // The server ended the session normally (its warning, e.g. the length limit, is already shown).
    endRecording();
    return;
  }
  if (info.retry && state.attempt < MAX_RECONNECTS && navigator.onLine !== false) {
    scheduleReconnect(info);
    return;
  }
  if (info.retry && navigator.onLine === false) {
    waitForNetwork();
    return;
  }
  // Known codes get our own words; an unknown one gets the server's message when it sent one.
  const known = event.code in CLOSE_CODES;
  const text = !known && serverError && serverError.message ? ` ${serverError.message}` : ` ${info.text}`;
  const link = info.login
    ? { href: cfg.loginUrl + "?next=" + encodeURIComponent(location.pathname), text: "Sign in" }
    : info.usage
      ? { href: "/usage/", text: "See usage" }
      : null;
  showAlert("error", info.title + ".", info.retry ? ` ${info.text} Gave up after ${MAX_RECONNECTS} attempts.` : text, { key: "connection", link });
  endRecording({ tone: "error", label: info.title });
}

function scheduleReconnect(info) {
  state.attempt += 1;
  const base = Math.min(15000, 1000 * 2 ** (state.attempt - 1));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  let left = Math.ceil(delay / 1000);
  setPhase("reconnecting");
  const label = `Reconnecting (attempt ${state.attempt} of ${MAX_RECONNECTS})`;
  setConn("busy", label, `· in ${left} s`);
  showAlert("warning", `${info.title}.`, ` ${info.text} Reconnecting automatically; audio meanwhile is kept (up to ${MAX_QUEUED_SECONDS} s).`, { key: "connection" });
  clearInterval(state.countdownTimer);
  state.countdownTimer = setInterval(() => {
    left = Math.max(0, left - 1);
    if (state.phase === "reconnecting" && !state.ws) setConn("busy", label, `· in ${left} s`);
  }, 1000);
  state.reconnectTimer = setTimeout(() => {
    clearInterval(state.countdownTimer);
    if (state.phase !== "reconnecting") return;
    setConn("busy", label, "· now");
    connect();
  }, delay);
}

function waitForNetwork() {
  setPhase("reconnecting", "Offline; waiting for the network");
  setConn("error", "Offline — waiting for the network");
  showAlert("warning", "You are offline.", " The session resumes when the network is back; audio meanwhile is kept (up to 10 s).", { key: "connection" });
}

window.addEventListener("online", () => {
  if (state.phase === "reconnecting" && !state.ws) {
    state.attempt = Math.max(0, state.attempt - 1);
    connect();
  }
});
window.addEventListener("offline", () => {
  if (state.phase === "recording") setConn("error", "Offline");
});

// --- start / stop -------------------------------------------------------------------------------------

async function start() {
  if (state.phase !== "ready") return;
  $("alerts").innerHTML = "";
  setPhase("starting");
  setConn("busy", "Opening the microphone…");
  resetTranscript();
  state.sessions = [];
  state.counts = {};
  state.sessionOffsets.clear();
  state.openStarts.clear();
  state.queue = [];
  state.queuedSeconds = 0;
  state.capturedSeconds = 0;
  state.attempt = 0;
  state.lastDb = null;
  $("session-foot").hidden = true;
  const capture = new Capture(onPacket);
  try {
    await capture.start($("mic").value, $("opt-cleanup").checked);
  } catch (err) {
    await capture.stop().catch(() => {});
    setPhase("ready");
    const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
    const missing = err && (err.name === "NotFoundError" || err.name === "OverconstrainedError");
    showAlert(
      "error",
      denied ? "Microphone access was blocked." : missing ? "That microphone is not available." : "The microphone could not be opened.",
      denied
        ? " Allow microphone access for this site in your browser's address bar, then press Start again."
        : missing
          ? " Choose another microphone and try again."
          : ` ${err && err.message ? err.message : ""}`,
      { key: "mic" },
    );
    return;
  }
  state.capture = capture;
  listMicrophones().catch(() => {});
  state.startedAt = performance.now();
  clearInterval(state.tickTimer);
  state.tickTimer = setInterval(tick, 250);
  setConn("busy", "Connecting…");
  connect();
}

function tick() {
  $("elapsed").textContent = elapsedText(state.capturedSeconds);
  showRemaining();
}

function showRemaining() {
  $("remaining").textContent = `${Math.max(0, Math.floor(state.remaining / 60)).toLocaleString()} min`;
}

async function stop() {
  if (!["starting", "recording", "reconnecting"].includes(state.phase)) return;
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  setPhase("stopping");
  const capture = state.capture;
  state.capture = null;
  if (capture) await capture.stop();
  setVad("idle");
  clearInterval(state.tickTimer);
  tick();
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN && state.listening) {
    ws.send(JSON.stringify({ type: "stop" }));
    state.stopTimer = setTimeout(finishStop, STOP_TIMEOUT_MS);
  } else {
    finishStop();
  }
}

function finishStop() {
  clearTimeout(state.stopTimer);
  const ws = state.ws;
  if (ws) {
    state.intentionalClose = true;
    ws.close(1000, "stopped");
  }
  state.ws = null;
  state.listening = false;
  clearInterval(state.pingTimer);
  state.openStarts.clear();
  setPhase("ready");
  showSessionFoot(true);
  setTimeout(refreshHealth, 500);
  if (state.finals.length) toast("Saved to your history");
}

async function endRecording({ tone, label } = {}) {
  clearInterval(state.tickTimer);
  clearInterval(state.pingTimer);
  const capture = state.capture;
  state.capture = null;
  if (capture) await capture.stop().catch(() => {});
  setVad("idle");
  state.openStarts.clear();
  setPhase("ready");
  if (tone) setConn(tone, label);
  showSessionFoot(true);
}

function onMicrophoneLost() {
  if (!["starting", "recording", "reconnecting"].includes(state.phase)) return;
  showAlert("error", "The microphone stopped.", " It was unplugged or another app took it. What was said so far is saved.", { key: "mic" });
  stop();
}

function showSessionFoot(done = false) {
  if (!state.sessionId) return;
  const foot = $("session-foot");
  foot.hidden = false;
  const count = state.sessions.length;
  const suffix = count > 1 ? ` (${count} sessions after reconnects)` : "";
  $("session-info").textContent = done ? `Saved${suffix}.` : `Recording to your history${suffix}…`;
  const link = $("session-link");
  link.href = `${cfg.historyUrl}${state.sessionId}/`;
  link.textContent = done ? "Open in history" : "Session page";
}

// --- wiring ------------------------------------------------------------------------------------------

$("rec-button").addEventListener("click", () => {
  if (state.phase === "ready") start();
  else stop();
});
$("copy-btn").addEventListener("click", copyTranscript);
$("download-btn").addEventListener("click", downloadTranscript);
$("clear-btn").addEventListener("click", clearTranscript);
navigator.mediaDevices?.addEventListener?.("devicechange", () => listMicrophones().catch(() => {}));
window.addEventListener("beforeunload", (event) => {
  if (["recording", "reconnecting", "stopping"].includes(state.phase)) {
    event.preventDefault();
    event.returnValue = "";
  }
});

// Tests and curious people can watch the page's state.
window.scribeLive = state;

setPhase("loading");
updateTranscriptChrome();
if (cfg.remainingSeconds <= 0) {
  showAlert("warning", "No audio left this month.", " Your monthly allowance is used up, so the server will refuse new sessions until it renews.", {
    key: "quota",
    link: { href: "/usage/", text: "See usage" },
  });
}
listMicrophones().catch(() => {});
requestAnimationFrame(drawLevel);
refreshHealth();
setInterval(refreshHealth, 15000);
pollReadiness();

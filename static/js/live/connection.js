// WebSocket to /ws/transcribe: protocol events, audio queue while not listening, ping, close codes, reconnect with
// backoff; a reconnect within the server's window resumes the same session (./resume.js).

import { onLevel } from "./capture.js";
import { abandonResume, canResume, keepLimitS, onAcknowledged, onFinalNumber, resetResume, resumeFrom, resumeQuery, sendAudio } from "./resume.js";
import { refreshHealth } from "./server.js";
import { endRecording, finishStop, showRemaining, showSessionFoot } from "./session.js";
import { $, cfg, state } from "./state.js";
import { lineKey, onFinal, onRealtime } from "./transcript.js";
import { clearAlert, setConn, setPhase, setVad, showAlert, toast } from "./ui.js";
import { onWakeStatus, onWakeTimeline, wakeOptions } from "./wake.js";

const MAX_RECONNECTS = 8;
const MAX_QUEUED_SECONDS = 10; // audio kept while reconnecting, sent once the server listens again
const PING_EVERY_MS = 5000;
// The server could not resume the dropped session (its window ended, or another server answered):
// the page goes on in a new session at once, with the audio it kept.
const RESUME_REFUSED = { 4404: "resume_not_found", 4410: "resume_expired" };

// What each close code means to the person at the microphone, and whether trying again can help.
const CLOSE_CODES = {
  4001: { retry: false, title: "You are signed out", text: "Sign in again to continue transcribing.", login: true },
  4003: { retry: false, title: "Not allowed to stream", text: "This account may not stream audio." },
  4029: { retry: false, title: "Too many live sessions", text: "You already have the most live sessions your plan allows. Stop one in another tab or device, then press Start again." },
  4429: { retry: false, title: "Too many attempts", text: "Too many new connections or failed credential checks came from this address. Wait a minute, then press Start again." },
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
  rate_limited: "Too many attempts from this address; wait a minute, then try again.",
  server_at_capacity: "The server is at capacity; trying again shortly.",
  inference_unavailable: "The speech model is not available on the server right now.",
  unsupported_language: "The model does not support the chosen language.",
  max_session_length: "This session reached the longest length allowed, so it was saved and stopped.",
  server_shutdown: "The server is restarting. Your text so far is saved; reconnecting…",
  too_fast: "Audio arrived much faster than real time, so the server stopped this session.",
  resume_expired: "The dropped session was saved; the recording goes on in a new one.",
  resume_not_found: "The dropped session could not be resumed; the recording goes on in a new one.",
  too_many_errors: "Too many malformed messages reached the server, so it stopped this session.",
  message_too_big: "An audio packet was larger than the server accepts.",
};

// The server's states once it listens: plain, or waiting for a wake word (nothing transcribed yet).
const LISTENING_STATES = ["listening", "wakeword_wait", "wakeword_detected", "wakeword_timeout"];
const WAKE_ERRORS = ["wake_word_unavailable"];

function wsUrl(query) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${cfg.wsPath}${query}`;
}

function sessionOptions() {
  const options = {
    interimResults: $("opt-interim").checked,
    wordTimestamps: $("opt-words").checked,
  };
  const language = $("opt-language").value;
  if (language) options.language = language;
  const enrichment = enrichmentOptions();
  if (enrichment) options.enrichment = enrichment;
  return { ...options, ...wakeOptions() };
}

// The enrichment switches the server offers (the page shows only those), as the `enrichment` option.
function enrichmentOptions() {
  const switches = [...document.querySelectorAll("input[data-enrich]")];
  if (!switches.length) return null;
  const enrichment = {};
  for (const input of switches) {
    if (input.dataset.enrich === "redact") enrichment.redact = input.checked ? ["pci", "phone", "email"] : [];
    else enrichment[input.dataset.enrich] = input.checked;
  }
  return enrichment;
}

export function connect() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  state.listening = false;
  state.lastServerError = null;
  // A reconnect during a recording asks for the same session; Start always begins a new one.
  const resuming = canResume() && state.phase === "reconnecting";
  const ws = new WebSocket(wsUrl(resuming ? resumeQuery() : ""));
  ws.binaryType = "arraybuffer";
  ws.resuming = resuming;
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
      if (event.resumed) {
        onResumed(ws, event);
        break;
      }
      state.sessionId = event.sessionId;
      state.sessions.push(event.sessionId);
      resetResume(event);
      if (event.limits && event.limits.remainingMonthlySeconds != null) {
        state.remaining = event.limits.remainingMonthlySeconds;
        showRemaining();
      }
      break;
    case "ready":
      if (!ws.resumed) ws.send(JSON.stringify({ type: "start", options: sessionOptions() }));
      break;
    case "status":
      if (typeof event.audioReceivedS === "number") onAcknowledged(event.audioReceivedS);
      // The reference's states: listening (again after every final), recording, transcribing, idle;
      // in wake-word mode also wakeword_wait, wakeword_detected and wakeword_timeout.
      if (onWakeStatus(event)) {
        showAlert("warning", "Wake-word mode is off on the server.", " Everything you say is transcribed.", { key: "wake" });
      }
      if (LISTENING_STATES.includes(event.state) && !state.listening) onListening();
      else if (event.state === "idle" && state.phase === "stopping") finishStop();
      break;
    case "realtime":
      onRealtime(event);
      break;
    case "final":
      onFinalNumber(event.segmentId);
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
      if (WAKE_ERRORS.includes(event.code) || /wake/i.test(`${event.field || ""} ${event.message || ""}`)) {
        showAlert("error", "The wake word cannot be used.", ` ${event.message || ""}`, { key: "wake" });
        break;
      }
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
  if (typeof event.event === "string" && event.event.startsWith("wakeword_")) {
    onWakeTimeline(event);
    return;
  }
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
  sendQueued(state.ws, []);
  afterListening(state.attempt ? "Reconnected" : null);
}

// The same session again: the server says how much audio it has; the rest is sent again, then
// what was captured meanwhile. Its finals made during the gap follow this hello.
function onResumed(ws, event) {
  ws.resumed = true;
  const again = resumeFrom(Number(event.audioReceivedS) || 0);
  if (!event.listening) ws.send(JSON.stringify({ type: "start", options: sessionOptions() }));
  state.listening = true;
  sendQueued(ws, again);
  afterListening("Reconnected to the same session");
}

function sendQueued(ws, first) {
  for (const packet of [...first, ...state.queue]) sendAudio(ws, packet);
  state.queue = [];
  state.queuedSeconds = 0;
}

function afterListening(note) {
  if (note) toast(note);
  state.attempt = 0;
  clearAlert("connection");
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

export function onPacket(data, seconds, rms, peak) {
  onLevel(rms, peak);
  const t = state.capturedSeconds;
  state.capturedSeconds += seconds;
  if (state.phase === "recording" || state.phase === "starting" || state.phase === "reconnecting") {
    state.remaining = Math.max(0, state.remaining - seconds);
  }
  const ws = state.ws;
  if (ws && state.listening && ws.readyState === WebSocket.OPEN) {
    sendAudio(ws, { data, t, seconds });
    return;
  }
  if (state.phase === "stopping" && !state.listening) return;
  state.queue.push({ data, t, seconds });
  state.queuedSeconds += seconds;
  const limit = keepLimitS() ?? MAX_QUEUED_SECONDS;
  while (state.queuedSeconds > limit && state.queue.length) {
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
  if (ws.resuming && event.code in RESUME_REFUSED) {
    resumeInNewSession(RESUME_REFUSED[event.code]);
    return;
  }
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

function resumeInNewSession(code) {
  const unacknowledged = abandonResume();
  state.queue = [...unacknowledged, ...state.queue];
  state.queuedSeconds = state.queue.reduce((sum, packet) => sum + packet.seconds, 0);
  showAlert("warning", EVENT_TEXT[code], "", { key: "connection" });
  connect();
}

function scheduleReconnect(info) {
  state.attempt += 1;
  const base = Math.min(15000, 1000 * 2 ** (state.attempt - 1));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  let left = Math.ceil(delay / 1000);
  setPhase("reconnecting");
  const label = `Reconnecting (attempt ${state.attempt} of ${MAX_RECONNECTS})`;
  setConn("busy", label, `· in ${left} s`);
  const kept = canResume() ? "audio meanwhile is kept and the same session goes on" : `audio meanwhile is kept (up to ${MAX_QUEUED_SECONDS} s)`;
  showAlert("warning", `${info.title}.`, ` ${info.text} Reconnecting automatically; ${kept}.`, { key: "connection" });
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

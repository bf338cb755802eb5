// Status display: toasts, connection label, model readiness, record button phase, voice state, latency, alerts.

import { $, state } from "./state.js";
import { lockWakeOptions } from "./wake.js";

let toastTimer = null;
export function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 2200);
}

// --- status display ----------------------------------------------------------------------------

// The label is a live region, so it changes only with the state; a ticking countdown goes in
// `detail`, which screen readers skip.
export function setConn(tone, label, detail = "") {
  $("conn").dataset.tone = tone;
  if ($("conn-label").textContent !== label) $("conn-label").textContent = label;
  $("conn-detail").textContent = detail;
}

export function setReadiness(kind, title, text) {
  const box = $("readiness");
  box.dataset.state = kind;
  // SVG elements have no `hidden` property: toggle the attribute.
  box.querySelector(".i-loading").toggleAttribute("hidden", kind !== "loading");
  box.querySelector(".i-ready").toggleAttribute("hidden", kind !== "ready");
  box.querySelector(".i-error").toggleAttribute("hidden", kind !== "error");
  $("readiness-title").textContent = title;
  $("readiness-text").textContent = text;
}

export function setPhase(phase, detail) {
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
    recording: state.wake?.active ? "Listening for the wake word" : "Listening — speak now",
    reconnecting: "Reconnecting; your audio is kept",
    stopping: "Finishing the last sentence…",
    unavailable: "Not available",
  }[phase];
  $("rec-sub").textContent = detail || sub;
  const locked = recordingLike || phase === "stopping";
  for (const id of ["mic", "opt-interim", "opt-words", "opt-cleanup"]) $(id).disabled = locked;
  for (const input of document.querySelectorAll("input[data-enrich]")) input.disabled = locked;
  lockWakeOptions(locked);
  if (!locked) $("opt-language").disabled = $("opt-language").options.length < 2;
  else $("opt-language").disabled = true;
  $("options-help").textContent = locked ? "Options are fixed while a session runs." : "Options apply when you press Start.";
  $("clear-btn").disabled = !(phase === "recording" && state.listening);
  if (phase === "ready") setConn("ok", "Ready");
  if (phase === "recording") setConn("live", "Live");
  if (phase === "stopping") setConn("busy", "Saving…");
}

export function setVad(kind) {
  const el = $("vad");
  el.dataset.state = kind;
  $("vad-text").textContent = { idle: "Idle", speaking: "Speaking", transcribing: "Transcribing" }[kind];
}

export function showLatency(ms) {
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

export function showAlert(kind, title, text, { key, link } = {}) {
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

export function clearAlert(key) {
  $("alerts").querySelector(`[data-key="${key}"]`)?.remove();
}

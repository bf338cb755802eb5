// Server checks over HTTP: model readiness (warm-up poll, gates Start) and the sessions-running figure.

import { $, cfg, state } from "./state.js";
import { clearAlert, setConn, setPhase, setReadiness, showAlert } from "./ui.js";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// --- readiness: the model must be loaded before Start is offered ----------------------------------

export async function pollReadiness() {
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

export async function refreshHealth() {
  try {
    const response = await fetch(cfg.healthUrl, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (body.activeSessions != null) $("server-load").textContent = `${body.activeSessions} of ${body.maxSessions}`;
  } catch (err) {
    $("server-load").textContent = "unknown";
  }
}

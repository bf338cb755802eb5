// Session figures and endings: elapsed time, minutes left, the history footer, and finishing a recording.

import { elapsedText } from "./format.js";
import { refreshHealth } from "./server.js";
import { $, cfg, state } from "./state.js";
import { setConn, setPhase, setVad, toast } from "./ui.js";
import { endWake } from "./wake.js";

export function tick() {
  $("elapsed").textContent = elapsedText(state.capturedSeconds);
  showRemaining();
}

export function showRemaining() {
  $("remaining").textContent = `${Math.max(0, Math.floor(state.remaining / 60)).toLocaleString()} min`;
}

export function finishStop() {
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
  endWake();
  setPhase("ready");
  showSessionFoot(true);
  setTimeout(refreshHealth, 500);
  if (state.finals.length) toast("Saved to your history");
}

export async function endRecording({ tone, label } = {}) {
  clearInterval(state.tickTimer);
  clearInterval(state.pingTimer);
  const capture = state.capture;
  state.capture = null;
  if (capture) await capture.stop().catch(() => {});
  setVad("idle");
  state.openStarts.clear();
  endWake();
  setPhase("ready");
  if (tone) setConn(tone, label);
  showSessionFoot(true);
}

export function showSessionFoot(done = false) {
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

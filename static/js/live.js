// Live transcription page: microphone capture through an AudioWorklet, ~40 ms packets on
// /ws/transcribe ([u32 LE metadata length][JSON metadata][PCM s16le]), and the transcript view:
// interim ("realtime") text shown muted and replaced in place by the final text of the same segment.
// Page wiring: Start / Stop and the page's buttons; the parts live in ./live/ (ES modules, no build step).

import { Capture, drawLevel, listMicrophones } from "./live/capture.js";
import { connect, onPacket } from "./live/connection.js";
import { pollReadiness, refreshHealth } from "./live/server.js";
import { finishStop, tick } from "./live/session.js";
import { $, cfg, state } from "./live/state.js";
import { clearTranscript, copyTranscript, downloadTranscript, resetTranscript, updateTranscriptChrome } from "./live/transcript.js";
import { setConn, setPhase, setVad, showAlert } from "./live/ui.js";
import { beginWake, wakeProblem } from "./live/wake.js";

const STOP_TIMEOUT_MS = 15000;

// --- start / stop -------------------------------------------------------------------------------------

async function start() {
  if (state.phase !== "ready") return;
  $("alerts").innerHTML = "";
  const problem = wakeProblem();
  if (problem) {
    showAlert("error", "Check the wake word.", ` ${problem.text}`, { key: "wake" });
    $(problem.field).focus();
    return;
  }
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
  const capture = new Capture(onPacket, onMicrophoneLost);
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
  beginWake();
  listMicrophones().catch(() => {});
  state.startedAt = performance.now();
  clearInterval(state.tickTimer);
  state.tickTimer = setInterval(tick, 250);
  setConn("busy", "Connecting…");
  connect();
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

function onMicrophoneLost() {
  if (!["starting", "recording", "reconnecting"].includes(state.phase)) return;
  showAlert("error", "The microphone stopped.", " It was unplugged or another app took it. What was said so far is saved.", { key: "mic" });
  stop();
}

// --- wiring ------------------------------------------------------------------------------------------

$("rec-button").addEventListener("click", () => {
  if (state.phase === "ready") start();
  else stop();
});
$("copy-btn").addEventListener("click", copyTranscript);
$("download-btn").addEventListener("click", downloadTranscript);
$("clear-btn").addEventListener("click", clearTranscript);
// The options form is never sent: its values are read at Start (Enter in a field must not reload).
$("options").addEventListener("submit", (event) => event.preventDefault());
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

// Wake-word mode: the options (switch, word or free phrase, follow-up window) sent in `start`, the
// state line of the recorder (waiting / heard / follow-up / timeout) driven by the server's `timeline`
// and `status` messages, and the badge of a line that a wake word opened.

import { $, state } from "./state.js";

const PORCUPINE = "pvporcupine";
const TRANSCRIPT = "transcript";
const MAX_FOLLOWUP_S = 600;

// The server's wake-word state names (status `wakeWord.state`) as the page's.
const WIRE_STATES = {
  waiting_for_wake_word: "waiting",
  wake_word_detected_waiting_for_voice: "detected",
  wake_word_wait_ended: "recording",
  wake_word_timeout: "timeout",
};

state.wake = {
  active: false, // this stream waits for wake words
  words: [],
  state: "off", // off | waiting | detected | recording | followup | timeout
  word: null, // the word last heard
  history: [], // the states shown, in order (tests read it through window.scribeLive)
  followupUntil: 0,
  timer: null,
};

// --- options --------------------------------------------------------------------------------------

function splitWords(text) {
  return (text || "")
    .split(",")
    .map((w) => w.trim().toLowerCase().replace(/\s+/g, " "))
    .filter(Boolean);
}

// {backend, words} of the choice on the page (words "" when a phrase is wanted but empty).
function choice() {
  const select = $("opt-wake-word");
  const option = select ? select.selectedOptions[0] : null;
  if (option && option.value) return { backend: option.dataset.backend || PORCUPINE, words: option.value };
  return { backend: TRANSCRIPT, words: splitWords($("opt-wake-phrase").value).join(",") };
}

function followupSeconds() {
  const value = parseFloat($("opt-wake-followup").value);
  return Number.isFinite(value) ? Math.min(MAX_FOLLOWUP_S, Math.max(0, value)) : null;
}

export function wakeOn() {
  return Boolean($("opt-wake")?.checked);
}

// Why Start cannot go ahead with these wake-word options (null when it can).
export function wakeProblem() {
  if (!wakeOn()) return null;
  if (!choice().words) return { field: "opt-wake-phrase", text: "Type the wake phrase to listen for, or choose a word." };
  const input = $("opt-wake-followup");
  if (input.value !== "" && (!input.checkValidity() || followupSeconds() == null)) {
    return { field: "opt-wake-followup", text: `The follow-up window is a number of seconds from 0 to ${MAX_FOLLOWUP_S}.` };
  }
  return null;
}

// The `start` options: off is said explicitly, so a server whose default is on is turned off too.
export function wakeOptions() {
  if (!$("opt-wake")) return {};
  if (!wakeOn()) return { wakeWords: "" }; // no words: off for this session (even if the server has some)
  const { backend, words } = choice();
  const options = { wakewordBackend: backend, wakeWords: words };
  const followup = followupSeconds();
  if (followup != null) options.wakeWordFollowupWindow = followup;
  return options;
}

function showFields() {
  const on = wakeOn();
  $("wake-fields").hidden = !on;
  $("opt-wake").setAttribute("aria-expanded", String(on));
  const select = $("opt-wake-word");
  $("wake-phrase-field").hidden = Boolean(select && select.value);
}

export function lockWakeOptions(locked) {
  for (const id of ["opt-wake", "opt-wake-word", "opt-wake-phrase", "opt-wake-followup"]) {
    const el = $(id);
    if (el) el.disabled = locked;
  }
}

if ($("opt-wake")) {
  $("opt-wake").addEventListener("change", showFields);
  $("opt-wake-word")?.addEventListener("change", () => {
    showFields();
    if (!$("opt-wake-word").value) $("opt-wake-phrase").focus();
  });
  showFields();
}

// --- the state line -----------------------------------------------------------------------------

function quoted(words) {
  return words.map((w) => `“${w}”`).join(" or ");
}

function render() {
  const w = state.wake;
  const box = $("wake-state");
  box.hidden = !w.active || w.state === "off";
  box.dataset.state = w.state;
  const heard = w.word ? `“${w.word}”` : quoted(w.words) || "the wake word";
  const text = {
    off: "",
    waiting: `Say ${quoted(w.words) || "the wake word"} to start`,
    detected: `Heard ${heard} — speak now`,
    recording: `Heard ${heard} — listening`,
    followup: "Follow-up: keep talking",
    timeout: "No speech after the wake word — say it again",
  }[w.state];
  // A live region: its text changes with the state only; the follow-up countdown goes in the detail.
  if ($("wake-state-text").textContent !== text) $("wake-state-text").textContent = text;
  const left = Math.max(0, Math.ceil((w.followupUntil - performance.now()) / 1000));
  $("wake-state-detail").textContent = w.state === "followup" ? `· ${left} s left` : "";
}

function setWake(kind, word) {
  const w = state.wake;
  if (!w.active) return;
  if (word) w.word = word;
  if (w.state === kind) return;
  w.state = kind;
  w.history.push(kind);
  clearInterval(w.timer);
  if (kind === "followup") w.timer = setInterval(render, 250);
  render();
}

// Called at `start`: the page shows the state line when this stream waits for wake words.
export function beginWake() {
  const w = state.wake;
  clearInterval(w.timer);
  w.active = wakeOn();
  w.words = w.active ? splitWords(choice().words) : [];
  w.state = "off";
  w.word = null;
  w.history = [];
  render();
}

export function endWake() {
  const w = state.wake;
  clearInterval(w.timer);
  w.active = false;
  w.state = "off";
  render();
}

function adopt(info) {
  // The server's own view of this stream's wake words (status and timeline carry it).
  if (!info || typeof info !== "object") return;
  const w = state.wake;
  if (info.enabled === false) {
    if (w.active) endWake();
    return;
  }
  if (info.enabled === true && !w.active) {
    w.active = true;
    w.history = [];
  }
  if (typeof info.wakeWords === "string" && info.wakeWords) w.words = splitWords(info.wakeWords);
}

export function onWakeTimeline(event) {
  adopt(event.wakeWord);
  const word = (event.wakeWord && event.wakeWord.word) || event.word || null;
  switch (event.event) {
    case "wakeword_wait_started":
      // After a timeout the page keeps saying why (its advice is the same: say the word).
      if (state.wake.state !== "timeout") setWake("waiting");
      break;
    case "wakeword_detected":
      setWake("detected", word);
      break;
    case "wakeword_wait_ended":
      setWake("recording", word);
      break;
    case "wakeword_timeout":
      setWake("timeout");
      break;
    case "wakeword_followup_started": {
      const seconds = Number(event.durationSeconds);
      state.wake.followupUntil = performance.now() + (Number.isFinite(seconds) ? seconds : 0) * 1000;
      setWake("followup");
      break;
    }
    case "wakeword_followup_timeout":
      setWake("waiting");
      break;
    default:
      break;
  }
}

// A status message; true when the page asked for wake words and the server says they are off.
export function onWakeStatus(event) {
  if (event.wakeWordEnabled === false && !(event.wakeWord && event.wakeWord.enabled)) {
    if (!state.wake.active || event.state === "idle") return false;
    endWake();
    return true;
  }
  adopt(event.wakeWord);
  const w = state.wake;
  if (!w.active) return false;
  const kind = { wakeword_wait: "waiting", wakeword_detected: "detected", wakeword_timeout: "timeout" }[event.state];
  if (!kind) return false; // listening / recording / transcribing: the timeline says more precisely
  if (kind === "waiting" && (w.state === "timeout" || w.state === "followup")) return false;
  setWake(kind);
  return false;
}

// The wake word that opened a line's segment, or null.
export function wakeWordOf(event) {
  const info = event.wakeWord || (event.segment && event.segment.wakeWord);
  return info && typeof info.word === "string" && info.word ? info.word : null;
}

export function wakeBadge(word) {
  const span = document.createElement("span");
  span.className = "wake-badge";
  span.dataset.wakeWord = word;
  span.title = `Started by the wake word “${word}”`;
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = "Wake word ";
  const end = document.createElement("span");
  end.className = "visually-hidden";
  end.textContent = ":";
  span.append(label, word, end);
  return span;
}

// Transcript view: interim lines replaced in place by finals, and copy / download / clear.

import { resetAnalysis, showAnalysis } from "./analysis.js";
import { clock, speakerName, speakerTone } from "./format.js";
import { $, state } from "./state.js";
import { showLatency, toast } from "./ui.js";
import { wakeBadge, wakeWordOf } from "./wake.js";

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

export function updateTranscriptChrome() {
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

export function lineKey(event) {
  return `${event.sessionId || state.sessionId}:${event.segmentId}`;
}

function timeLabel(start, end) {
  const span = document.createElement("span");
  span.className = "seg-time";
  span.textContent = end != null ? `${clock(start)} – ${clock(end)}` : clock(start);
  return span;
}

// The speaker before a line's text, coloured as on the session page.
function speakerBadge(label) {
  const span = document.createElement("span");
  span.className = `speaker spk-${speakerTone(label)}`;
  span.dataset.speaker = label;
  span.textContent = speakerName(label);
  const colon = document.createElement("span");
  colon.className = "visually-hidden";
  colon.textContent = ":";
  span.append(colon);
  return span;
}

function validSpeaker(label) {
  return typeof label === "string" && label ? label : null;
}

export function onRealtime(event) {
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
    line = { el, final: false, wakeWord: null };
    state.lines.set(key, line);
  }
  line.wakeWord = wakeWordOf(event) || line.wakeWord;
  const p = line.el.querySelector(".line-text");
  p.innerHTML = "";
  if (line.wakeWord) p.append(wakeBadge(line.wakeWord), " ");
  const speaker = validSpeaker(event.speaker);
  if (speaker) p.append(speakerBadge(speaker), " ");
  const stable = event.stableText ?? event.text ?? "";
  const unstable = event.unstableText ?? ""; // carries its own leading space (reference dialect)
  p.append(document.createTextNode(stable));
  if (unstable) {
    const u = document.createElement("span");
    u.className = "unstable";
    u.textContent = unstable;
    p.append(u);
  }
  updateTranscriptChrome();
  scrollTranscript(near);
}

export function onFinal(event) {
  if (event.analysis && typeof event.analysis === "object") showAnalysis(event.analysis);
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
  // A segment opened by a wake word: its word before the text.
  const wakeWord = wakeWordOf(event) || existing?.wakeWord || null;
  if (wakeWord) {
    el.dataset.wakeWord = wakeWord;
    p.append(wakeBadge(wakeWord), " ");
  }
  const speaker = validSpeaker(event.speaker);
  if (speaker) {
    el.dataset.speaker = speaker;
    p.append(speakerBadge(speaker), " ");
  }
  if (Array.isArray(event.words) && event.words.length) {
    event.words.forEach((w, i) => {
      const span = document.createElement("span");
      span.className = "word";
      span.textContent = i === 0 ? w.word.trimStart() : w.word;
      span.title = `${clock(start + (w.start || 0))}${w.probability != null ? ` · ${(w.probability * 100).toFixed(0)}%` : ""}`;
      p.append(span);
    });
  } else {
    p.append(document.createTextNode(text));
  }
  el.append(p);
  // The final replaces the draft of the same segment where it stands.
  if (existing && existing.el.isConnected) existing.el.replaceWith(el);
  else $("transcript").append(el);
  state.lines.set(key, { el, final: true, text, start, end, speaker, wakeWord });
  state.finals.push({ key, start, end, text, speaker, wakeWord });
  if (event.latencyMs != null) {
    state.latencies.push(event.latencyMs);
    showLatency(event.latencyMs);
  }
  updateTranscriptChrome();
  scrollTranscript(near);
}

function transcriptText({ timed = false } = {}) {
  const ordered = [...state.finals].sort((a, b) => a.start - b.start);
  // As the exports write it: "Speaker 1: text" when speakers are identified.
  const said = (f) => (f.speaker ? `${speakerName(f.speaker)}: ${f.text}` : f.text);
  if (!timed) return ordered.map(said).join("\n");
  return ordered.map((f) => `[${clock(f.start)} – ${clock(f.end)}] ${said(f)}`).join("\n");
}

export async function copyTranscript() {
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

export function downloadTranscript() {
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

export function clearTranscript() {
  if (state.ws && state.listening) state.ws.send(JSON.stringify({ type: "clear" }));
  resetTranscript();
}

export function resetTranscript() {
  $("transcript").innerHTML = "";
  state.lines.clear();
  state.finals = [];
  state.latencies = [];
  showLatency(null);
  resetAnalysis();
  updateTranscriptChrome();
}

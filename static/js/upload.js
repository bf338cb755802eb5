// The upload page: a dropped or chosen file goes to POST /api/v1/transcriptions/ (session cookie and
// CSRF token, so the API's checks and limits apply), with an upload progress bar (XHR
// upload.onprogress), then a transcription progress bar (polling the Location's `progress`), then
// the session page. API errors are shown with their message.

const config = JSON.parse(document.getElementById("upload-config").textContent);
const form = document.getElementById("upload-form");
const input = document.getElementById("upload-file");
const dropzone = document.getElementById("dropzone");
const chosen = document.getElementById("file-chosen");
const submit = document.getElementById("upload-submit");
const errorBox = document.getElementById("upload-error");
const statusLine = document.getElementById("upload-status");
const progress = document.getElementById("upload-progress");
const POLL_MS = 700;
const ZERO_ID = "00000000-0000-0000-0000-000000000000";

// What the page did, for people reading the console and for the browser tests.
const state = { phase: "idle", file: null, sent: [], transcribed: [], error: null, sessionId: null };
window.scribeUpload = state;

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const field = form.querySelector('input[name="csrfmiddlewaretoken"]');
  return (meta && meta.content) || (field && field.value) || "";
}

function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function setBar(id, share) {
  const bar = document.getElementById(id);
  const percent = Math.max(0, Math.min(100, Math.round(share * 100)));
  bar.setAttribute("aria-valuenow", String(percent));
  bar.firstElementChild.style.setProperty("--value", `${percent}%`);
  return percent;
}

function showError(message) {
  state.error = message;
  errorBox.textContent = message;
  errorBox.hidden = false;
  statusLine.textContent = "";
  dropzone.dataset.state = state.file ? "chosen" : "empty";
  setBusy(false);
}

function setBusy(busy) {
  submit.disabled = busy;
  input.disabled = busy;
  form.querySelectorAll("select, input").forEach((el) => {
    if (el.type !== "hidden") el.disabled = busy;
  });
  form.setAttribute("aria-busy", busy ? "true" : "false");
}

function choose(file) {
  state.file = file || null;
  errorBox.hidden = true;
  if (!file) {
    chosen.textContent = "";
    dropzone.dataset.state = "empty";
    return;
  }
  chosen.textContent = `${file.name} · ${sizeText(file.size)}`;
  dropzone.dataset.state = "chosen";
  if (file.size > config.maxUploadBytes) {
    showError(`The file is larger than your limit of ${sizeText(config.maxUploadBytes)}.`);
  }
}

input.addEventListener("change", () => choose(input.files[0]));
["dragenter", "dragover"].forEach((name) =>
  dropzone.addEventListener(name, (event) => {
    event.preventDefault();
    dropzone.dataset.over = "1";
  }),
);
["dragleave", "drop"].forEach((name) =>
  dropzone.addEventListener(name, () => {
    delete dropzone.dataset.over;
  }),
);
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (!file) return;
  try {
    input.files = event.dataTransfer.files; // keeps the picker in step where the browser allows it
  } catch (err) {
    /* the file is kept in state.file anyway */
  }
  choose(file);
});
// A file dropped beside the zone must not make the browser leave the page to open it.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

function body() {
  const data = new FormData();
  data.append("file", state.file, state.file.name);
  const language = form.elements.language;
  if (language && language.value) data.append("language", language.value);
  data.append("word_timestamps", form.elements.word_timestamps.checked ? "true" : "false");
  data.append("store_audio", form.elements.store_audio.checked ? "true" : "false");
  const terms = (form.elements.keyterms_text.value || "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  // One JSON array: a term may hold a comma the field would otherwise split at.
  if (terms.length) data.append("keyterms", JSON.stringify(terms));
  const vocabulary = form.elements.vocabulary;
  if (vocabulary && vocabulary.value) data.append("vocabulary", vocabulary.value);
  for (const name of ["speakers", "sentiment", "topics", "profanity_filter"]) {
    const box = form.elements[name];
    if (box) data.append(name, box.checked ? "true" : "false");
  }
  const redact = form.elements.redact;
  if (redact) data.append("redact", redact.checked ? redact.value : "");
  return data;
}

function apiMessage(xhrOrBody, status) {
  const answer = xhrOrBody || {};
  if (answer.detail) return answer.detail;
  if (status === 413) return "The file is too large.";
  if (status === 403) return "You are not allowed to upload (sign in again?).";
  return `The upload was refused (HTTP ${status}).`;
}

function send() {
  const xhr = new XMLHttpRequest();
  xhr.open("POST", config.createUrl);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.setRequestHeader("Accept", "application/json");
  xhr.responseType = "json";
  xhr.upload.onprogress = (event) => {
    if (!event.lengthComputable) return;
    const percent = setBar("sending-bar", event.loaded / event.total);
    state.sent.push(percent);
    document.getElementById("sending-figure").textContent = `${percent}% of ${sizeText(event.total)}`;
  };
  xhr.upload.onload = () => {
    setBar("sending-bar", 1);
    document.getElementById("sending-figure").textContent = "Sent; checking the file";
  };
  xhr.onerror = () => showError("The upload was interrupted: the connection to the server was lost.");
  xhr.onload = () => {
    const answer = xhr.response;
    if (xhr.status !== 202 || !answer) {
      showError(apiMessage(answer, xhr.status));
      return;
    }
    state.sessionId = answer.id;
    state.phase = "transcribing";
    document.getElementById("sending-figure").textContent = "Done";
    statusLine.textContent = "Transcribing…";
    poll(xhr.getResponseHeader("Location") || answer.url, answer);
  };
  state.phase = "uploading";
  xhr.send(body());
}

function transcribed(answer) {
  const percent = setBar("transcribing-bar", answer.progress || 0);
  state.transcribed.push(percent);
  const label = answer.status === "pending" ? "Queued" : `${percent}%`;
  document.getElementById("transcribing-figure").textContent = label;
}

async function poll(location, first) {
  let answer = first;
  for (;;) {
    transcribed(answer);
    if (answer.status === "completed") {
      state.phase = "done";
      statusLine.textContent = "Done; opening the session…";
      // What the bars showed, kept for this tab (the console, and the browser tests, read it there).
      sessionStorage.setItem("scribe-upload", JSON.stringify({ sent: state.sent, transcribed: state.transcribed }));
      window.location.assign(config.sessionUrl.replace(ZERO_ID, answer.id));
      return;
    }
    if (answer.status === "failed") {
      showError(answer.error || "The recording could not be transcribed.");
      state.phase = "failed";
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      const response = await fetch(location, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const next = await response.json().catch(() => null);
      if (!response.ok || !next) {
        showError(apiMessage(next, response.status));
        return;
      }
      answer = next;
    } catch (err) {
      statusLine.textContent = "Connection lost; retrying…"; // the job runs on; ask again
    }
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!state.file) {
    showError("Choose an audio file first.");
    return;
  }
  if (state.file.size > config.maxUploadBytes) {
    showError(`The file is larger than your limit of ${sizeText(config.maxUploadBytes)}.`);
    return;
  }
  errorBox.hidden = true;
  state.error = null;
  state.sent = [];
  state.transcribed = [];
  progress.hidden = false;
  setBar("sending-bar", 0);
  setBar("transcribing-bar", 0);
  document.getElementById("transcribing-figure").textContent = "Waiting for the upload";
  dropzone.dataset.state = "busy";
  statusLine.textContent = "Uploading…";
  setBusy(true);
  send();
});

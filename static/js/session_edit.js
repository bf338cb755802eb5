// Corrections on the session page: each segment's Edit button opens its text and speaker in place;
// Save sends PATCH /api/v1/sessions/{id}/segments/{index} (session cookie and CSRF token). The
// original stays on the server and is shown under "Show original".

const config = JSON.parse(document.getElementById("edit-config").textContent);
const state = { saved: 0, error: null };
window.scribeEdit = state;

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function currentText(item) {
  const words = item.querySelector(".seg-words");
  return words.hasAttribute("data-empty") ? "" : words.textContent;
}

function newLabel() {
  const numbers = config.speakers.map(([label]) => Number(label.split("_").pop())).filter(Number.isFinite);
  return `speaker_${(numbers.length ? Math.max(...numbers) : 0) + 1}`;
}

function speakerSelect(item, id) {
  const select = document.createElement("select");
  select.id = id;
  select.name = "speaker";
  const current = item.dataset.speaker || "";
  const options = [["", "No speaker"], ...config.speakers, [newLabel(), "New speaker"]];
  for (const [label, name] of options) {
    const option = new Option(name, label, false, label === current);
    select.append(option);
  }
  return select;
}

function field(labelText, control) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const label = document.createElement("label");
  label.htmlFor = control.id;
  label.textContent = labelText;
  wrap.append(label, control);
  return wrap;
}

function showOriginal(item, segment) {
  let details = item.querySelector(".seg-original");
  if (!details) {
    details = document.createElement("details");
    details.className = "seg-original";
    details.innerHTML = '<summary><span class="edited-badge">Edited</span> Show original</summary><p></p>';
    item.querySelector(".seg-body").append(details);
  }
  const text = document.createElement("span");
  text.className = "seg-original-text";
  text.textContent = segment.original_text || "(no words)";
  details.querySelector("p").replaceChildren(text);
}

async function refreshTranscript() {
  const target = document.getElementById("transcript-text");
  if (!target) return;
  try {
    const response = await fetch(config.sessionUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok) target.textContent = (await response.json()).transcript;
  } catch (err) {
    /* the page's transcript catches up on the next load */
  }
}

function close(item) {
  item.querySelector(".seg-editor")?.remove();
  item.querySelector(".seg-text").hidden = false;
  const details = item.querySelector(".seg-original");
  if (details) details.hidden = false;
  item.querySelector("[data-edit-segment]").hidden = false;
}

function open(item) {
  if (item.querySelector(".seg-editor")) return;
  const index = item.dataset.index;
  const editor = document.createElement("form");
  editor.className = "seg-editor";
  editor.noValidate = true;
  const text = document.createElement("textarea");
  text.id = `seg-edit-text-${index}`;
  text.name = "text";
  text.rows = 3;
  text.maxLength = config.maxTextChars;
  text.value = currentText(item);
  const speaker = speakerSelect(item, `seg-edit-speaker-${index}`);
  const error = document.createElement("p");
  error.className = "field-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  const actions = document.createElement("div");
  actions.className = "seg-editor-actions";
  actions.innerHTML =
    '<button type="submit" class="button small">Save</button>' +
    '<button type="button" class="button small secondary" data-cancel>Cancel</button>';
  editor.append(field("Text", text), field("Speaker", speaker), error, actions);
  item.querySelector(".seg-text").hidden = true;
  const details = item.querySelector(".seg-original");
  if (details) details.hidden = true;
  item.querySelector("[data-edit-segment]").hidden = true;
  item.querySelector(".seg-body").append(editor);
  text.focus();

  actions.querySelector("[data-cancel]").addEventListener("click", () => close(item));
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close(item);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) editor.requestSubmit();
  });
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if (text.value !== currentText(item)) body.text = text.value;
    if (speaker.value !== (item.dataset.speaker || "")) body.speaker = speaker.value;
    if (!Object.keys(body).length) {
      close(item);
      return;
    }
    editor.setAttribute("aria-busy", "true");
    let response;
    let answer = null;
    try {
      response = await fetch(`${config.segmentUrl}${index}/`, {
        method: "PATCH",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      });
      answer = await response.json().catch(() => null);
    } catch (err) {
      response = null;
    }
    editor.removeAttribute("aria-busy");
    if (!response || !response.ok || !answer) {
      state.error = (answer && answer.detail) || "The correction could not be saved; try again.";
      error.textContent = state.error;
      error.hidden = false;
      return;
    }
    state.saved += 1;
    if ("speaker" in body) {
      // Speaker figures and colours are the server's: show them as it now counts them.
      window.location.reload();
      return;
    }
    const words = item.querySelector(".seg-words");
    words.textContent = answer.text || "(no words)";
    words.toggleAttribute("data-empty", !answer.text);
    item.classList.add("edited");
    item.dataset.edited = answer.edited_at;
    showOriginal(item, answer);
    close(item);
    refreshTranscript();
  });
}

document.querySelectorAll("[data-edit-segment]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", () => open(button.closest("li")));
});

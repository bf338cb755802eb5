// The session page's player: the segment being heard is highlighted (and, with word timings, its
// word, in the caption under the player); clicking a segment or a word seeks there.
// Reads the segments' data-start/data-end and the "player-words" json_script; never rewrites the
// segment markup (only toggles classes on it).

const audio = document.getElementById("session-audio");
const caption = document.getElementById("player-caption");
const list = document.getElementById("segments");

function readWords() {
  const node = document.getElementById(audio?.dataset.words || "");
  if (!node) return new Map();
  try {
    return new Map(JSON.parse(node.textContent).map((seg) => [String(seg.index), seg.words]));
  } catch {
    return new Map();
  }
}

function segmentRows() {
  if (!list) return [];
  return [...list.querySelectorAll("li[data-start]")]
    .map((li) => ({ li, index: li.dataset.index, start: Number(li.dataset.start), end: Number(li.dataset.end) }))
    .filter((row) => Number.isFinite(row.start) && Number.isFinite(row.end));
}

// Clicks on the segment's own controls (editing, links) are theirs, not a seek.
const INTERACTIVE = "a, button, input, textarea, select, label, summary, [contenteditable], form, [role=button]";

export function segmentAt(rows, t) {
  let found = null;
  for (const row of rows) {
    if (row.start <= t && t < Math.max(row.end, row.start + 0.05)) found = row;
  }
  return found;
}

export function wordAt(words, t) {
  if (!words) return -1;
  for (let i = words.length - 1; i >= 0; i -= 1) {
    if (words[i].s <= t) return t < Math.max(words[i].e, words[i].s + 0.05) || i === words.length - 1 ? i : -1;
  }
  return -1;
}

function seek(t) {
  audio.currentTime = Math.max(0, t);
  const playing = audio.play();
  if (playing && typeof playing.catch === "function") playing.catch(() => {});
}

function start() {
  if (!audio) return;
  const words = readWords();
  let rows = segmentRows();
  let current = null;
  let captionFor = null;

  function renderCaption(row) {
    captionFor = row ? row.index : null;
    caption.replaceChildren();
    const own = row ? words.get(row.index) : null;
    caption.hidden = !own || own.length === 0;
    if (caption.hidden) return;
    own.forEach((word, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "player-word";
      button.dataset.start = String(word.s);
      button.dataset.i = String(i);
      button.textContent = word.w;
      caption.append(button, " ");
    });
  }

  function update() {
    const t = audio.currentTime;
    const row = segmentAt(rows, t);
    if (row !== current) {
      current?.li.classList.remove("playing");
      current?.li.removeAttribute("aria-current");
      row?.li.classList.add("playing");
      row?.li.setAttribute("aria-current", "true");
      current = row;
    }
    const key = row ? row.index : null;
    if (key !== captionFor) renderCaption(row);
    if (row && !caption.hidden) {
      const i = wordAt(words.get(row.index), t);
      for (const b of caption.querySelectorAll(".player-word")) {
        b.classList.toggle("playing", Number(b.dataset.i) === i);
      }
    }
  }

  let frame = 0;
  function tick() {
    update();
    frame = audio.paused ? 0 : requestAnimationFrame(tick);
  }
  audio.addEventListener("play", () => { if (!frame) frame = requestAnimationFrame(tick); });
  audio.addEventListener("timeupdate", update);
  audio.addEventListener("seeked", update);

  list?.addEventListener("click", (event) => {
    if (event.target.closest(INTERACTIVE)) return;
    const li = event.target.closest("li[data-start]");
    if (!li || !list.contains(li)) return;
    if (window.getSelection && String(window.getSelection()).length) return; // selecting text
    seek(Number(li.dataset.start));
  });
  caption.addEventListener("click", (event) => {
    const word = event.target.closest(".player-word");
    if (word) seek(Number(word.dataset.start));
  });
  // Another script (the correction UI) may re-render segments: read them again.
  if (list) {
    const reread = () => {
      current?.li.classList.remove("playing");
      current = null;
      rows = segmentRows();
      update();
    };
    new MutationObserver(reread).observe(list, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ["data-start", "data-end"],
    });
  }
  update();
}

start();

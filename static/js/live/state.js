// Shared page state: the server's config for this page, a DOM lookup, and the one state object.

export const cfg = JSON.parse(document.getElementById("live-config").textContent);
export const $ = (id) => document.getElementById(id);

export const state = {
  phase: "loading", // loading | ready | starting | recording | reconnecting | stopping | unavailable
  modelReady: false,
  ws: null,
  sessionId: null,
  sessions: [], // every server session this recording produced (a resumed reconnect stays in the same one)
  listening: false,
  capture: null,
  queue: [], // [{data, t, seconds}] packets waiting for a listening server
  queuedSeconds: 0,
  capturedSeconds: 0, // audio produced since Start (the clock of the transcript)
  offset: 0, // capture time at which the current server session's audio starts
  attempt: 0,
  reconnectTimer: null,
  countdownTimer: null,
  stopTimer: null,
  pingTimer: null,
  tickTimer: null,
  startedAt: 0,
  intentionalClose: false,
  lastServerError: null,
  lines: new Map(), // `${sessionId}:${segmentId}` -> {el, final, text, start, end}
  finals: [], // [{start, end, text}] in arrival order
  latencies: [],
  rttMs: null,
  remaining: cfg.remainingSeconds,
  level: 0,
  peak: 0,
  counts: {}, // events received, by type (shown to tests through window.scribeLive)
};

state.openStarts = new Map(); // segment key -> start (server seconds) from timeline events
state.sessionOffsets = new Map(); // sessionId -> capture time where its audio starts
state.offsetFor = (event) => state.sessionOffsets.get(event.sessionId || state.sessionId) ?? 0;

// Resuming a dropped stream into the same session: the server's resume token (from `hello`), the
// audio sent since the server last acknowledged it (`audioReceivedS` in `status`), the last final
// received, and re-sending from the figure in the resumed `hello`, so nothing is lost or sent twice.

const EPSILON_S = 0.0005; // the server's figures have 3 decimals; packets are ~40 ms
const KEEP_BEYOND_WINDOW_S = 15; // audio kept while reconnecting: the window, and a little more

const resume = {
  token: null,
  windowS: 0,
  sent: [], // [{data, t, seconds, at}] sent on this session, not yet acknowledged (`at`: server seconds)
  sentSeconds: 0, // where the next packet starts, in the session's audio
  lastFinal: 0, // the highest `segmentId` of a final received on this session
};

// A new recording (Start) or a new server session: nothing to resume from before it.
export function resetResume(event = null) {
  resume.token = event && event.resume ? event.resume.token : null;
  resume.windowS = event && event.resume ? Number(event.resume.windowS) || 0 : 0;
  resume.sent = [];
  resume.sentSeconds = 0;
  resume.lastFinal = 0;
}

export function canResume() {
  return Boolean(resume.token);
}

// The query that asks the server to resume: the token and the last final this page has.
export function resumeQuery() {
  const params = new URLSearchParams({ resume: resume.token, lastSegment: String(resume.lastFinal) });
  return `?${params}`;
}

// How much audio to keep while the connection is down (null: the page's own limit).
export function keepLimitS() {
  return resume.token ? resume.windowS + KEEP_BEYOND_WINDOW_S : null;
}

// Send one packet on `ws`, keeping it until the server acknowledges it.
export function sendAudio(ws, packet) {
  ws.send(packet.data);
  if (!resume.token) return;
  resume.sent.push({ ...packet, at: resume.sentSeconds });
  resume.sentSeconds += packet.seconds;
  const limit = keepLimitS();
  while (resume.sent.length && resume.sentSeconds - resume.sent[0].at > limit) resume.sent.shift();
}

// The server holds `receivedS` seconds: what ends by then is safe.
export function onAcknowledged(receivedS) {
  while (resume.sent.length && resume.sent[0].at + resume.sent[0].seconds <= receivedS + EPSILON_S) {
    resume.sent.shift();
  }
}

export function onFinalNumber(segmentId) {
  if (Number.isInteger(segmentId)) resume.lastFinal = Math.max(resume.lastFinal, segmentId);
}

// The resumed hello says how much audio the server has: the packets to send again, from there on.
export function resumeFrom(receivedS) {
  const again = resume.sent.filter((p) => p.at >= receivedS - EPSILON_S);
  resume.sent = [];
  resume.sentSeconds = receivedS;
  return again.map(({ data, t, seconds }) => ({ data, t, seconds }));
}

// The server could not resume (window over, or another server): the unacknowledged audio goes to the
// next session, before what was captured meanwhile.
export function abandonResume() {
  const unsent = resume.sent.map(({ data, t, seconds }) => ({ data, t, seconds }));
  resetResume();
  return unsent;
}

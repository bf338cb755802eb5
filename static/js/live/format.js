// Time formatting: transcript clock (m:ss.s) and elapsed time (h:mm:ss).

export function clock(seconds) {
  const s = Math.max(0, seconds || 0);
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}:${rest.toFixed(1).padStart(4, "0")}`;
}

export function elapsedText(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

// Speakers: "speaker_2" -> "Speaker 2", and its colour (.spk-1 ... .spk-8 in app.css), picked as the
// session page picks it (transcription/web/views.py speaker_tone): the number round the palette.
const SPEAKER_TONES = 8;

export function speakerName(label) {
  const cut = label.indexOf("_");
  if (cut < 0 || cut === label.length - 1) return label;
  const prefix = label.slice(0, cut);
  return `${prefix.charAt(0).toUpperCase()}${prefix.slice(1).toLowerCase()} ${label.slice(cut + 1)}`;
}

export function speakerTone(label) {
  const match = /_([0-9]+)$/.exec(label);
  const n = match ? parseInt(match[1], 10) : [...label].reduce((sum, c) => sum + c.codePointAt(0), 0);
  return ((((n - 1) % SPEAKER_TONES) + SPEAKER_TONES) % SPEAKER_TONES) + 1;
}

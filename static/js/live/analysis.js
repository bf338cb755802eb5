// The session's latest enrichment, from the `analysis` of final events: its overall sentiment and
// topics in a small strip above the transcript (hidden until a final carries them).

import { $ } from "./state.js";

const SENTIMENTS = ["positive", "neutral", "negative"];
const MAX_TOPICS = 6;

function percent(value) {
  return typeof value === "number" && Number.isFinite(value) ? `${Math.round(value * 100)}%` : "";
}

function showSentiment(sentiment, whose) {
  const badge = $("analysis-sentiment");
  const label = sentiment && SENTIMENTS.includes(sentiment.label) ? sentiment.label : null;
  if (!label) return false;
  badge.className = `sentiment-badge sent-${label}`;
  badge.dataset.sentiment = label;
  badge.textContent = label.charAt(0).toUpperCase() + label.slice(1);
  const score = percent(sentiment.score);
  badge.title = `Sentiment of ${whose}${score ? ` (score ${score})` : ""}`;
  badge.hidden = false;
  $("analysis-sentiment-label").hidden = false;
  return true;
}

function showTopics(topics) {
  const list = $("analysis-topics");
  const shown = topics
    .filter((t) => t && typeof t.topic === "string" && t.topic)
    .sort((a, b) => (b.confidence || 0) - (a.confidence || 0))
    .slice(0, MAX_TOPICS);
  list.innerHTML = "";
  for (const topic of shown) {
    const li = document.createElement("li");
    const chip = document.createElement("span");
    chip.className = "topic-chip";
    chip.append(topic.topic);
    const confidence = percent(topic.confidence);
    if (confidence) {
      const small = document.createElement("span");
      small.className = "topic-confidence";
      small.textContent = confidence;
      chip.append(" ", small);
    }
    li.append(chip);
    list.append(li);
  }
  list.hidden = shown.length === 0;
  $("analysis-topics-label").hidden = shown.length === 0;
  return shown.length > 0;
}

export function showAnalysis(analysis) {
  let any = !$("analysis-strip").hidden;
  // The session's sentiment so far; a final that carries only its own still says something.
  const shown = analysis.sessionSentiment
    ? showSentiment(analysis.sessionSentiment, "the session so far")
    : showSentiment(analysis.sentiment, "the last line");
  if (shown) any = true;
  if (Array.isArray(analysis.topics) && showTopics(analysis.topics)) any = true;
  $("analysis-strip").hidden = !any;
}

export function resetAnalysis() {
  $("analysis-strip").hidden = true;
  $("analysis-sentiment").hidden = true;
  $("analysis-sentiment-label").hidden = true;
  $("analysis-topics").innerHTML = "";
  $("analysis-topics").hidden = true;
  $("analysis-topics-label").hidden = true;
}

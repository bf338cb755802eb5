"""End-of-turn verdicts: has the speaker finished, judged from what was said (and how).

A segment's early transcription (started on a short silence) is read here. Whisper punctuates
almost any fragment as a sentence, so the text alone mostly says when a turn is NOT over (a
dangling conjunction, article or preposition, a comma, no punctuation); the audio model
(`speech.turn_model`, optional) says how likely the intonation and wording end a turn.
"""

from __future__ import annotations

import re

COMPLETE = "complete"  # close after a short silence
INCOMPLETE = "incomplete"  # wait longer, up to the ceiling
UNSURE = "unsure"  # the ordinary silence rule

VERDICTS = (COMPLETE, INCOMPLETE, UNSURE)

SENTENCE_END = ".?!。？！"
# Words a finished English sentence rarely ends on.
DANGLING = frozenset(
    """
    a an the and but or nor so yet because although though while whereas if unless until
    than that which who whom whose where when whether as of to in on at by for from with
    into onto upon about over under between through during without within against among
    my your his her its our their this these those is are was were be been am i we you
    they he she it there very more most not no just like such also then
    """.split()
)
_WORD = re.compile(r"[\w']+")


def text_verdict(text: str, *, punctuated: bool = True) -> str:
    """COMPLETE when the text ends a sentence, INCOMPLETE when it plainly does not, else UNSURE.

    `punctuated=False` when the transcription's punctuation cannot be trusted (key terms primed
    into Whisper often drop the final period): a missing one then says nothing.
    """
    text = text.strip().strip("\"')]}»”’").rstrip()
    if not text:
        return UNSURE
    if text.endswith(("...", "…")):
        return INCOMPLETE
    words = _WORD.findall(text.lower())
    if words and words[-1] in DANGLING:
        return INCOMPLETE
    if text[-1] in SENTENCE_END:
        return COMPLETE
    return INCOMPLETE if punctuated or text[-1] in ",;:-–—" else UNSURE


def verdict(text: str, probability: float | None, threshold: float, *, punctuated: bool = True) -> str:
    """The text's verdict, confirmed (or demoted to UNSURE) by the audio model when there is one."""
    said = text_verdict(text, punctuated=punctuated)
    if said != COMPLETE or probability is None:
        return said
    return COMPLETE if probability >= threshold else UNSURE

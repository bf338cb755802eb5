"""Profanity masking and redaction (cards, phones, e-mails, SSNs, numbers) of transcript text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

# --- Options ----------------------------------------------------------------------------------

REDACT_KINDS = frozenset({"pci", "phone", "email", "ssn", "numbers"})

# Each redaction is replaced by its kind in capitals. Deepgram's documentation names the
# kinds (redact=pci, ssn, numbers, ...) but not one replacement form: its entity redaction
# has been reported writing "[TYPE_1]" tokens. A counter is left out on purpose: the filter
# runs per segment, so counters would restart on every segment, and a digit in the token
# would itself be redacted again by `numbers` (not idempotent). Interim masking in
# speech.enrich.session already writes "[PCI]" and "[NUMBER]", so the forms agree.
TOKENS = {
    "pci": "[PCI]",
    "ssn": "[SSN]",
    "phone": "[PHONE]",
    "email": "[EMAIL]",
    "numbers": "[NUMBER]",
}

# Deepgram's `redact` values (groups, aliases and entity names) -> our kinds. `pii` is
# Deepgram's group for identifying information; of it we detect SSNs, phones and e-mails
# (not names or places). `false` (Deepgram's default) selects nothing.
_ALIASES: dict[str, frozenset[str]] = {
    "pci": frozenset({"pci"}),
    "credit_card": frozenset({"pci"}),
    "ssn": frozenset({"ssn"}),
    "phone": frozenset({"phone"}),
    "phone_number": frozenset({"phone"}),
    "email": frozenset({"email"}),
    "email_address": frozenset({"email"}),
    "numbers": frozenset({"numbers"}),
    "true": frozenset({"numbers"}),
    "aggressive_numbers": frozenset({"numbers"}),
    "pii": frozenset({"ssn", "phone", "email"}),
    "false": frozenset(),
}

# Deepgram's `numbers`: "any sequence of three or more consecutive numerals".
NUMBERS_MIN_DIGITS = 3


def parse_redact(values: str | Iterable[str]) -> frozenset[str]:
    """Deepgram-style `redact` values (a comma-separated string or a list) -> our kinds.

    Case and surrounding spaces are ignored; ValueError names every value not understood.
    """
    items = values.split(",") if isinstance(values, str) else list(values)
    kinds: set[str] = set()
    unknown: list[str] = []
    for item in items:
        if not isinstance(item, str):
            unknown.append(repr(item))
            continue
        name = item.strip().lower()
        if not name:
            continue
        if name in _ALIASES:
            kinds |= _ALIASES[name]
        else:
            unknown.append(repr(item.strip()))
    if unknown:
        accepted = ", ".join(sorted(_ALIASES))
        raise ValueError(f"unknown redact value(s) {', '.join(unknown)}; accepted: {accepted}")
    return frozenset(kinds)


# --- Profanity --------------------------------------------------------------------------------

# better-profanity's list is meant for user-generated text and masks ordinary words a
# transcript needs: anatomy and medicine, news (murder, rape, nazi), everyday words with a
# slang sense (screw, stroke, organ, pot, rum, tit the bird), identities (gay, queer,
# lesbians) and names (Len, Yury, Pollock). Those are kept readable; obscenities and slurs
# stay masked. Spellings obfuscated with symbols ("sh!t", "f_u_c_k") are dropped: a speech
# model never writes them.
_NOT_PROFANE = frozenset(
    """
    anal anus areole arian aryan asanchez bimbo bimbos bondage breasts busty clitoris cowgirl cowgirls
    crotch cum dink dinks doggin dogging dong doofus dopey drunk dummy ejaculate ejaculated
    ejaculates ejaculating ejaculatings ejaculation enlargement erect erection erotic erotism
    extacy extasy facial fat fingering flange fondle foobar foreskin freex gae gai gay gays gey
    ghay ghey gigolo glans god gonad gonads gringo guido hell hemp heroin herp herpes herpy
    hitler hiv homey hooch hookah hooker hooters hootch hump humped humping hymen inbred incest
    jerk jerked junkie junky kill kinky klan knob labia lech len leper lesbians lmao lmfao loin
    loins lube lust lusting lusty masochist maxi menses menstruate menstruation meth molest moron
    muff murder napalm naked nappy nazi nazism niggle nimrod ninny nipple nipples nude nudes
    omg opiate opium oral orally organ orgies ovary ovum ovums paddy pantie panties panty pastie
    pasty pawn pcp pedophile pedophilia pedophiliac penetrate penetration penial penile penis
    peyote phalli phallic pimp pinko playboy pms pollock poop pot potty prig prostitute prude pube
    pubic pubis punky queer queers racy rape raped raper raping rapist raunch rectal rectum rectus
    reich revue rum rump ruski sadism sadist sandbar scag scantily schizo screw screwed screwing
    scrotum scum seaman seamen seduce semen sex sexual sissy skag slave sleaze sleazy slope smut
    smutty snatch sniper snuff sodom souse soused sperm steamy stoned strip stroke stupid suck
    sucked sucking tampon tawdry teat teste testee testes testical testicle testis thrust thug
    tinkle tit titi toke toots tramp transsexual trashy tush ugly undies unwed urinal urine
    uterus uzi vagina valium viagra virgin vixen vodka vomit voyeur vulgar vulva wad wang weed
    weenie weirdo wench whiz willies willy womb woody xx yury
    """.split()
) | frozenset({"cow girl", "cow girls", "strip club", "three some", "deep throat"})

_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_PLAIN_ENTRY = re.compile(r"[a-z0-9]+(?:[ '-][a-z0-9]+)*")


@cache
def _profanity_lists() -> tuple[frozenset[str], frozenset[str], re.Pattern[str] | None]:
    """Single-word entries, first words of the multi-word ones, and one regex for those."""
    text = resources.files("better_profanity").joinpath("profanity_wordlist.txt").read_text("utf-8")
    single: set[str] = set()
    multi: list[str] = []
    for line in text.splitlines():
        entry = line.strip().lower()
        if not entry or entry in _NOT_PROFANE or not _PLAIN_ENTRY.fullmatch(entry):
            continue
        if " " in entry:
            multi.append(entry)
        else:
            single.add(entry)
    pattern = None
    if multi:
        alternatives = sorted((r"\s+".join(map(re.escape, e.split())) for e in multi), key=len, reverse=True)
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    firsts = frozenset(entry.split()[0] for entry in multi)
    return frozenset(single), firsts, pattern


def mask_word(text: str) -> str:
    """First letter or digit kept, every later one an asterisk, the rest as is ("f***ing" style)."""
    out: list[str] = []
    seen_first = False
    for ch in text:
        if ch.isalnum():
            out.append("*" if seen_first else ch)
            seen_first = True
        else:
            out.append(ch)
    return "".join(out)


def _profanity_spans(text: str) -> list[tuple[int, int]]:
    single, firsts, multi = _profanity_lists()
    # Fast path (most segments are clean): one findall over the lowered text and set tests.
    tokens = set(_TOKEN.findall(text.lower().replace("’", "'")))
    if single.isdisjoint(tokens) and firsts.isdisjoint(tokens):
        if not any("-" in t or t.endswith("'s") for t in tokens):
            return []
    spans: list[tuple[int, int]] = []
    if multi is not None and not firsts.isdisjoint(tokens):
        # Multi-word entries first, so "bull shit" is masked whole rather than as "bull s***".
        spans.extend(m.span() for m in multi.finditer(text))
    for match in _TOKEN.finditer(text):
        token = match.group().lower().replace("’", "'")
        if token in single:
            spans.append(match.span())
            continue
        start = match.start()
        if token.endswith("'s") and token[:-2] in single:  # "bitch's"
            spans.append((start, start + len(token) - 2))
            continue
        if "-" in token:  # "mother-fucking": mask the profane parts only
            offset = 0
            for part in token.split("-"):
                if part in single:
                    spans.append((start + offset, start + offset + len(part)))
                offset += len(part) + 1
    return spans


# --- Redaction: numbers written as digits or spelled out ---------------------------------------

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_ZERO_LETTERS = frozenset({"oh", "o"})  # zero only inside a run of digits: "five oh one"
_DIGIT_WORD = "|".join(_DIGIT_WORDS)
# One digit group: digits, "double five", or a digit word ("four"); words need word edges.
_ATOM = re.compile(
    rf"\d+|(?<![\w'’])(?:(?P<mult>double|triple)[\s-]+)?(?P<word>{_DIGIT_WORD})(?![\w'’])",
    re.IGNORECASE,
)
# What may separate the groups of one number: spaces, dashes, commas, dots, slashes.
_GAP = re.compile(r"[\s,.\-–—/]{0,3}")


@dataclass
class _Atom:
    start: int
    end: int
    digits: str
    spelled: bool


def _digit_runs(text: str) -> list[list[_Atom]]:
    """Runs of digit groups that read as one number ("4111 1111", "five five five, one two")."""
    runs: list[list[_Atom]] = []
    current: list[_Atom] = []
    for match in _ATOM.finditer(text):
        word = match.group("word")
        if word is None:
            atom = _Atom(match.start(), match.end(), match.group(), False)
        else:
            word = word.lower()
            mult = (match.group("mult") or "").lower()
            repeat = 3 if mult == "triple" else 2 if mult == "double" else 1
            atom = _Atom(match.start(), match.end(), _DIGIT_WORDS[word] * repeat, True)
        joined = bool(current) and _GAP.fullmatch(text, current[-1].end, atom.start) is not None
        if joined and atom.spelled and current[-1].spelled and text[current[-1].end : atom.start].isspace():
            # Spelled digits with only spaces between them are one group: a card or phone
            # is then looked for at the pauses (commas) a reader makes, not at every digit,
            # which would give a Luhn-valid 13-digit stretch in most 16-digit runs.
            last = current[-1]
            current[-1] = _Atom(last.start, atom.end, last.digits + atom.digits, True)
            continue
        if not joined:
            if current:
                runs.append(current)
            current = []
            if word in _ZERO_LETTERS:
                continue  # "oh" or "o" does not start a number
        current.append(atom)
    if current:
        runs.append(current)
    return runs


def _best_subrun(run: list[_Atom], lengths: range, ok: Callable[[str], bool]) -> tuple[int, int] | None:
    # The longest stretch of whole groups (then the earliest) whose digit count is in
    # `lengths` and that passes `ok(digits)`.
    whole = "".join(a.digits for a in run)
    if len(whole) in lengths and ok(whole):
        return 0, len(run) - 1  # the usual case: the whole run is the number
    best: tuple[int, int, int] | None = None
    for i in range(len(run)):
        digits = ""
        for j in range(i, len(run)):
            digits += run[j].digits
            if len(digits) > lengths.stop - 1:
                break
            if len(digits) in lengths and (best is None or len(digits) > best[2]) and ok(digits):
                best = (i, j, len(digits))
    return (best[0], best[1]) if best else None


_CARD_LENGTHS = range(12, 20)  # ISO/IEC 7812 card numbers are 12 to 19 digits
_CARD_STRETCH = range(13, 20)  # inside a longer run: a Luhn-valid stretch of the usual lengths
_PHONE_LENGTHS = range(10, 12)


def _is_card(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def _is_spoken_phone(digits: str) -> bool:
    if len(digits) == 11 and not digits.startswith("1"):
        return False
    import phonenumbers

    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(digits, "US"))
    except phonenumbers.NumberParseException:
        return False


_SSN_WRITTEN = re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])")
_SEVEN_DIGITS = re.compile(r"(?:\d\D{0,3}){7}")


def _phone_spans(text: str, taken: list[_Span]) -> list[tuple[int, int]]:
    # Text already redacted (a card number) is blanked out, offsets kept: the matcher then
    # has fewer candidates to try (~80 µs instead of ~450 µs beside a card number).
    for span in taken:
        text = text[: span.start] + " " * (span.end - span.start) + text[span.end :]
    if not _SEVEN_DIGITS.search(text):
        return []  # cheap pre-check: the matcher costs ~50-100 µs even with nothing to find
    import phonenumbers

    return [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, "US")]


# --- Redaction: e-mail addresses, written or spoken ------------------------------------------

_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|ai|app|dev|me|us|uk|ca|au|de|fr|es|it|nl|se|no|"
    "dk|fi|ie|in|jp|cn|br|mx|ru|ch|at|be|pl|nz|za|tv|xyz|online|tech"
)
_LABEL = r"[A-Za-z0-9]+"
# Written dots take no spaces: "work. It" is a sentence end, not a domain.
_SEP_LOCAL = r"(?:[._+-]|\s+(?:dot|underscore|dash|hyphen|plus)\s+)"
_DOT = r"(?:\.|\s+dot\s+)"
_AT = r"(?:\s*@\s*|\s+at\s+)"
_EMAIL = re.compile(
    rf"(?<![\w.@])(?P<local>{_LABEL}(?:{_SEP_LOCAL}{_LABEL})*){_AT}"
    rf"(?:{_LABEL}(?:-{_LABEL})*{_DOT})+(?:{_TLDS})(?![\w@])",
    re.IGNORECASE,
)
# A lone common word before " at " is speech, not a mailbox: "visit us at example dot com".
_NOT_A_MAILBOX = frozenset(
    "me us you him her them it is was be are look looking find found visit go went write online "
    "site website page email mail address reach contact or and the a an we they i".split()
)


def _email_spans(text: str) -> list[tuple[int, int]]:
    lowered = text.lower()
    if "@" not in text and " at " not in lowered:
        return []
    spans = []
    for match in _EMAIL.finditer(text):
        if match.group("local").lower() in _NOT_A_MAILBOX:
            continue
        spans.append(match.span())
    return spans


# --- The filter -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filtered:
    text: str
    profanity: list[str] = field(default_factory=list)  # masked forms ("f***"), never the originals
    redacted: dict[str, int] = field(default_factory=dict)  # kind -> how many, kinds found only


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kind: str  # a redaction kind, or "profanity"


def _overlaps(start: int, end: int, spans: list[_Span]) -> bool:
    return any(start < s.end and s.start < end for s in spans)


_HAS_DIGITISH = re.compile(rf"\d|(?<![\w'’])(?:{_DIGIT_WORD})(?![\w'’])", re.IGNORECASE)


@dataclass(frozen=True)
class TextFilter:
    """What to mask in transcript text: profanity (Deepgram's profanity_filter) and redaction kinds.

    Kinds: pci (card numbers: a run of 12-19 digits, grouped or not, written or spelled out; within
    a longer run, a stretch of whole groups passing Luhn), phone (libphonenumber's matcher, region
    US, and spelled-out 10/11-digit US numbers), email (written, or spoken as "john dot smith at
    example dot com"), ssn (NNN-NN-NNNN or NNN NN NNNN, or a number of exactly 9 digits) and numbers
    (every run of 3 or more digits, written or spelled). When spans overlap the first of email, pci,
    ssn, phone, numbers wins, and redaction wins over profanity. Filtering is deterministic and
    idempotent: the tokens and masks it writes match nothing it looks for.
    """

    profanity: bool = False
    redact: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        kinds = frozenset(self.redact)
        unknown = sorted(kinds - REDACT_KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {unknown}; known: {sorted(REDACT_KINDS)}")
        object.__setattr__(self, "redact", kinds)

    @property
    def active(self) -> bool:
        """False when nothing is enabled: callers can skip filtering altogether."""
        return self.profanity or bool(self.redact)

    def _spans(self, text: str) -> list[_Span]:
        accepted: list[_Span] = []

        def take(start: int, end: int, kind: str) -> bool:
            if start >= end or _overlaps(start, end, accepted):
                return False
            accepted.append(_Span(start, end, kind))
            return True

        redact = self.redact
        if "email" in redact:
            for start, end in _email_spans(text):
                take(start, end, "email")
        numeric = redact & {"pci", "ssn", "phone", "numbers"}
        if numeric and _HAS_DIGITISH.search(text):
            runs = _digit_runs(text)
            if "pci" in redact:
                for run in runs:
                    length = sum(len(a.digits) for a in run)
                    if length in _CARD_LENGTHS:
                        # A whole run of a card's length is taken as one without the Luhn check:
                        # a speech model drops or repeats spoken digits, and a misheard card
                        # number must not slip through (over-redaction is the safe mistake).
                        take(run[0].start, run[-1].end, "pci")
                    elif length > _CARD_LENGTHS.stop - 1:
                        found = _best_subrun(run, _CARD_STRETCH, _is_card)
                        if found:
                            take(run[found[0]].start, run[found[1]].end, "pci")
                        elif any(a.spelled for a in run):
                            # Spoken digits past a card's length with no valid stretch: most
                            # likely a card number the model repeated digits of ("four one
                            # one ... one", 22 digits). Redact it all rather than let it through.
                            take(run[0].start, run[-1].end, "pci")
            if "ssn" in redact:
                for match in _SSN_WRITTEN.finditer(text):
                    take(match.start(), match.end(), "ssn")
                for run in runs:
                    if sum(len(a.digits) for a in run) == 9:
                        take(run[0].start, run[-1].end, "ssn")
            if "phone" in redact:
                for start, end in _phone_spans(text, accepted):
                    take(start, end, "phone")
                for run in runs:
                    free = not _overlaps(run[0].start, run[-1].end, accepted)
                    if free and any(a.spelled for a in run):
                        found = _best_subrun(run, _PHONE_LENGTHS, _is_spoken_phone)
                        if found:
                            take(run[found[0]].start, run[found[1]].end, "phone")
            if "numbers" in redact:
                for run in runs:
                    # The groups not inside another span yet, split where one is: each
                    # stretch of NUMBERS_MIN_DIGITS or more digits becomes one [NUMBER].
                    stretch: list[_Atom] = []
                    for atom in [*run, None]:
                        if atom is not None and not _overlaps(atom.start, atom.end, accepted):
                            stretch.append(atom)
                            continue
                        if sum(len(a.digits) for a in stretch) >= NUMBERS_MIN_DIGITS:
                            take(stretch[0].start, stretch[-1].end, "numbers")
                        stretch = []
        if self.profanity:
            for start, end in _profanity_spans(text):
                take(start, end, "profanity")
        accepted.sort(key=lambda s: s.start)
        return accepted

    def apply(self, text: str) -> Filtered:
        """The filtered text, the masked forms of the profanity found, and redaction counts."""
        if not self.active or not text:
            return Filtered(text)
        spans = self._spans(text)
        if not spans:
            return Filtered(text)
        pieces: list[str] = []
        masked: list[str] = []
        counts: dict[str, int] = {}
        pos = 0
        for span in spans:
            pieces.append(text[pos : span.start])
            if span.kind == "profanity":
                word = mask_word(text[span.start : span.end])
                masked.append(word)
                pieces.append(word)
            else:
                counts[span.kind] = counts.get(span.kind, 0) + 1
                pieces.append(TOKENS[span.kind])
            pos = span.end
        pieces.append(text[pos:])
        return Filtered("".join(pieces), masked, counts)

    def apply_words(self, words: list[dict]) -> list[dict]:
        """Word-timing dicts ({"word", "start", "end", ...}) masked as apply() masks the text.

        Detection runs on the words joined (a space is assumed between words that carry
        none), so a card number read out over four words is found; every word it touches
        is replaced by the token, keeping its own timing, leading space and punctuation
        outside the match. Profanity masks keep the word's length. Returns new dicts.
        """
        if not self.active or not words:
            return [dict(w) for w in words]
        joined_parts: list[str] = []
        offsets: list[tuple[int, int]] = []
        length = 0
        for w in words:
            text = str(w.get("word", ""))
            if length and text[:1] and not text[:1].isspace():
                joined_parts.append(" ")
                length += 1
            offsets.append((length, length + len(text)))
            joined_parts.append(text)
            length += len(text)
        joined = "".join(joined_parts)
        spans = self._spans(joined)
        out: list[dict] = []
        for w, (w_start, w_end) in zip(words, offsets, strict=True):
            new = dict(w)
            out.append(new)
            text = joined[w_start:w_end]
            core_start = w_start + (len(text) - len(text.lstrip()))
            core_end = w_end - (len(text) - len(text.rstrip()))
            hits = [s for s in spans if s.start < core_end and core_start < s.end]
            if not hits:
                continue
            pieces: list[str] = [joined[w_start:core_start]]
            pos = core_start
            for span in hits:
                start, end = max(span.start, core_start), min(span.end, core_end)
                pieces.append(joined[pos:start])
                if span.kind == "profanity":
                    # Masking is length-preserving, so the word's share of it is a slice.
                    masked = mask_word(joined[span.start : span.end])
                    pieces.append(masked[start - span.start : end - span.start])
                else:
                    pieces.append(TOKENS[span.kind])
                pos = end
            pieces.append(joined[pos:w_end])
            new["word"] = "".join(pieces)
        return out

"""Filters: profanity masking and redaction of cards, phones, e-mails, SSNs and numbers."""

from __future__ import annotations

import logging

import pytest

from speech.enrich.filters import REDACT_KINDS, TOKENS, Filtered, TextFilter, mask_word, parse_redact

ALL = TextFilter(profanity=True, redact=REDACT_KINDS)
PROFANITY = TextFilter(profanity=True)


def only(*kinds: str) -> TextFilter:
    return TextFilter(redact=frozenset(kinds))


# --- options ----------------------------------------------------------------------------------


def test_inactive_filter_changes_nothing():
    flt = TextFilter()
    assert not flt.active
    assert flt.apply("fuck 4111 1111 1111 1111") == Filtered("fuck 4111 1111 1111 1111")
    assert TextFilter(profanity=True).active and only("pci").active


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="phi"):
        TextFilter(redact=frozenset({"phi"}))


@pytest.mark.parametrize(
    ("values", "kinds"),
    [
        ("pci", {"pci"}),
        ("PCI, ssn", {"pci", "ssn"}),
        (["numbers"], {"numbers"}),
        ("true", {"numbers"}),  # Deepgram: numbers (or true)
        ("aggressive_numbers", {"numbers"}),
        ("pii", {"ssn", "phone", "email"}),
        (["pii", "pci"], {"ssn", "phone", "email", "pci"}),
        ("credit_card,phone_number,email_address", {"pci", "phone", "email"}),
        ("phone,email", {"phone", "email"}),
        ("false", set()),
        ("", set()),
        ([], set()),
    ],
)
def test_parse_redact(values, kinds):
    assert parse_redact(values) == frozenset(kinds)


def test_parse_redact_names_the_unknown_values():
    with pytest.raises(ValueError) as err:
        parse_redact("pci, phi,  bogus ")
    message = str(err.value)
    assert "'phi'" in message and "'bogus'" in message and "'pci'" not in message.split(";")[0]
    with pytest.raises(ValueError, match="names"):
        parse_redact(["names"])


# --- profanity --------------------------------------------------------------------------------


def test_mask_word():
    assert mask_word("fuck") == "f***"
    assert mask_word("Shit") == "S***"
    assert mask_word("son-of-a-bitch") == "s**-**-*-*****"


def test_profanity_is_masked_and_the_report_holds_masked_forms_only():
    text = "What the fuck is this shit, you bastard? That's bull shit. Fucking hell."
    out = PROFANITY.apply(text)
    assert out.text == "What the f*** is this s***, you b******? That's b*** ****. F****** hell."
    assert out.profanity == ["f***", "s***", "b******", "b*** ****", "F******"]
    assert out.redacted == {}
    for word in ("fuck", "shit", "bastard", "Fucking"):
        assert word not in out.text
        assert all(word.lower() not in masked.lower() for masked in out.profanity)


def test_profanity_matches_whole_words_only():
    text = "Scunthorpe class assessment: cocktails at the Shitake stand in Essex."
    assert PROFANITY.apply(text) == Filtered(text)


def test_ordinary_words_of_the_broad_list_stay_readable():
    text = "God knows the hell they went through; the sniper hit an organ, a stroke of bad luck."
    assert PROFANITY.apply(text) == Filtered(text)


def test_profanity_inside_compounds_and_possessives():
    out = PROFANITY.apply("A mother-fucking mess and a bitch's mess.")
    assert out.text == "A mother-f****** mess and a b****'s mess."


def test_corpus_references_are_left_alone(corpus):
    for utt in corpus.manifest().values():
        assert ALL.apply(utt.reference).text == utt.reference, utt.name


# --- cards --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782 822463 10005",  # Amex, 15 digits
        "four one one one one one one one one one one one one one one one",
        "four one one one, one one one one, one one one one, one one one one",
        "five five five five, five five five five, five five five five, four four double four",
    ],
)
def test_card_numbers_are_redacted(card):
    out = only("pci").apply(f"My card number is {card}, thanks.")
    assert out.text == "My card number is [PCI], thanks."
    assert out.redacted == {"pci": 1}


@pytest.mark.parametrize(
    "digits",
    [
        "1234 5678",  # too short
        "1234 5678 901",  # 11 digits: shorter than any card
        "1234 5678 9012 3456 7890 1234",  # too long, and no 13-19 digit stretch of whole groups passes
    ],
)
def test_other_digit_runs_are_not_cards(digits):
    """(A run of 12-19 digits is a card even when Luhn fails: the model mishears digits.)"""
    text = f"The code is {digits} today."
    assert only("pci").apply(text) == Filtered(text)


def test_a_spoken_card_the_model_repeated_digits_of_is_still_redacted():
    # What tiny.en made of espeak-ng saying "4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1": 22 spoken
    # digits, no Luhn-valid stretch. Written digits that long stay (an order number, say).
    text = "My card number is four" + " one" * 21 + "."
    out = only("pci").apply(text)
    assert out.text == "My card number is [PCI]."
    assert out.redacted == {"pci": 1}


def test_a_card_is_found_among_whole_groups_of_a_longer_run():
    out = only("pci").apply("It is 4111 1111 1111 1111 1111 1 now.")
    assert out.text == "It is [PCI] 1111 1 now."


def test_card_inside_a_longer_run_of_numbers():
    out = only("pci").apply("Order 12 card 4111 1111 1111 1111 expiry 12 25.")
    assert out.text == "Order 12 card [PCI] expiry 12 25."


# --- phones, e-mails, SSNs, numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "+1 415 555 2671",
        "+44 20 7946 0958",
        "four one five, five five five, two six seven one",
        "four one five five five five two six seven one",
        "one four one five five five five two six seven one",
    ],
)
def test_phone_numbers_are_redacted(phone):
    out = only("phone").apply(f"Call me at {phone} tomorrow.")
    assert out.text == "Call me at [PHONE] tomorrow."
    assert out.redacted == {"phone": 1}


def test_phrases_with_a_few_digit_words_are_not_phones():
    text = "One of the two men had five dogs and one cat, oh well."
    assert only("phone", "pci", "ssn").apply(text) == Filtered(text)


@pytest.mark.parametrize(
    "email",
    [
        "john.smith@example.com",
        "j_doe+news@mail.example.co.uk",
        "john dot smith at example dot com",
        "John Dot Smith at Example Dot Com",
        "jane underscore doe at gmail dot com",
        "support at my-company dot io",
        "john.smith at example.com",
    ],
)
def test_emails_written_or_spoken_are_redacted(email):
    out = only("email").apply(f"Write to {email}. Thanks.")
    assert out.text == "Write to [EMAIL]. Thanks."
    assert out.redacted == {"email": 1}


@pytest.mark.parametrize(
    "text",
    [
        "Look at the dot com bubble.",
        "Visit us at example dot com.",
        "I was at home. It was late.",
        "Send it to bob at work. It arrived.",
        "We met at noon.",
    ],
)
def test_ordinary_phrases_with_at_and_dot_are_not_emails(text):
    assert only("email").apply(text) == Filtered(text)


@pytest.mark.parametrize(
    "ssn", ["123-45-6789", "123 45 6789", "one two three four five six seven eight nine"]
)
def test_ssn(ssn):
    out = only("ssn").apply(f"My social is {ssn}.")
    assert out.text == "My social is [SSN]."
    assert out.redacted == {"ssn": 1}


def test_numbers_redacts_runs_of_three_or_more_digits():
    out = only("numbers").apply(
        "I have 2 cats, 1,000 dollars, room 101 and code five five five one and one of them 12."
    )
    assert out.text == "I have 2 cats, [NUMBER] dollars, room [NUMBER] and code [NUMBER] and one of them 12."
    assert out.redacted == {"numbers": 3}


def test_specific_kinds_win_over_numbers_and_are_counted_apart():
    text = "Card 4111 1111 1111 1111, phone (415) 555-2671, mail a.b@example.org, ssn 123-45-6789, room 404."
    out = ALL.apply(text)
    assert out.text == ("Card [PCI], phone [PHONE], mail [EMAIL], ssn [SSN], room [NUMBER].")
    assert out.redacted == {"pci": 1, "phone": 1, "email": 1, "ssn": 1, "numbers": 1}


def test_nothing_secret_is_left_in_the_output_the_report_or_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    secrets = ["4111 1111 1111 1111", "415) 555-2671", "john.smith@example.com", "fuck"]
    text = f"My card {secrets[0]}, phone ({secrets[1]}, mail {secrets[2]}, {secrets[3]} it."
    out = ALL.apply(text)
    dump = repr(out) + caplog.text
    for secret in secrets:
        assert secret not in dump
    assert "4111" not in dump and "2671" not in dump


# --- idempotence and words --------------------------------------------------------------------

SAMPLES = [
    "What the fuck, card 4111 1111 1111 1111 and call four one five five five five two six seven one.",
    "mail john dot smith at example dot com or a.b@example.org, ssn 123-45-6789, room 101, bull shit",
    "Printing, in the only sense with which we are at present concerned.",
    "[PCI] [PHONE] [EMAIL] [SSN] [NUMBER] f*** b*** ****",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_filtering_is_deterministic_and_idempotent(text):
    once = ALL.apply(text)
    assert ALL.apply(text) == once
    twice = ALL.apply(once.text)
    assert twice.text == once.text
    assert twice.profanity == [] and twice.redacted == {}


def _words(text: str, leading_space: bool = True) -> list[dict]:
    return [
        {
            "word": (" " if leading_space else "") + w,
            "start": i * 0.5,
            "end": i * 0.5 + 0.4,
            "probability": 0.9,
        }
        for i, w in enumerate(text.split())
    ]


def test_words_of_a_card_number_are_each_masked_keeping_timings():
    words = _words("My card is 4111 1111 1111 1111. Fuck, that's it.")
    out = ALL.apply_words(words)
    assert [w["word"] for w in out] == [
        " My",
        " card",
        " is",
        " [PCI]",
        " [PCI]",
        " [PCI]",
        " [PCI].",
        " F***,",
        " that's",
        " it.",
    ]
    for before, after in zip(words, out, strict=True):
        assert {k: v for k, v in before.items() if k != "word"} == {
            k: v for k, v in after.items() if k != "word"
        }
    assert words[3]["word"] == " 4111"  # the input is not changed


def test_words_without_leading_spaces_and_spelled_digits():
    words = _words("call four one five five five five two six seven one now", leading_space=False)
    out = only("phone").apply_words(words)
    assert [w["word"] for w in out] == ["call"] + ["[PHONE]"] * 10 + ["now"]


def test_words_of_a_spoken_email_and_a_two_word_profanity():
    out = ALL.apply_words(_words("write john dot smith at example dot com, bull shit"))
    assert [w["word"] for w in out] == [" write"] + [" [EMAIL]"] * 6 + [
        " [EMAIL],",
        " b***",
        " ****",
    ]


def test_words_masking_is_idempotent_and_matches_the_text_masking():
    text = SAMPLES[0]
    once = ALL.apply_words(_words(text))
    assert ALL.apply_words(once) == once
    joined = "".join(w["word"] for w in once)
    for token in TOKENS.values():
        assert joined.count(token) >= ALL.apply(text).text.count(token)
    assert "4111" not in joined and "fuck" not in joined.lower()
    assert ALL.apply_words([]) == []


@pytest.mark.parametrize(
    "digits",
    [
        "4111 1111 1111 1112",  # Luhn fails: one digit misheard
        "4-1-1-1-1-1-1-1-1-1-1-1-1",  # a spoken 16-digit card as tiny.en wrote it, three 1s lost
        "four one one one one one one one one one one one one one one two",
    ],
)
def test_a_misheard_card_number_is_still_redacted(digits):
    out = only("pci").apply(f"My card number is {digits}.")
    assert out.text == "My card number is [PCI]." and out.redacted == {"pci": 1}

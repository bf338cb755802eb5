"""The key terms a stream starts with: a named vocabulary's terms, then the inline ones.

For the streaming protocols (sync: wrap it with `database_sync_to_async`). Importing this module
touches neither Django's app registry nor the database; only a call with a vocabulary name does.
"""

from __future__ import annotations

from speech.keyterms import KeytermError, clean_keyterms


def keyterms_for(user_id: int, inline: object, vocabulary: str | None) -> tuple[str, ...]:
    """The validated key terms for a stream of user `user_id`.

    `inline` is what the client sent (None, or a list of strings); `vocabulary` the name of one of
    the user's vocabularies (None or "" for none). The vocabulary's terms come first, then the
    inline ones; duplicates (ignoring case) are dropped and the merged list must still obey the
    limits of `speech.keyterms`. Raises KeytermError: the codes of `clean_keyterms`, and
    `unknown_vocabulary` for a name the user has no vocabulary of (another user's included).
    """
    terms = clean_keyterms(inline)
    if vocabulary is None or vocabulary == "":
        return terms
    if not isinstance(vocabulary, str) or "\x00" in vocabulary:  # no stored name has a NUL
        raise KeytermError("unknown_vocabulary", "vocabulary must be the name of one of your vocabularies.")
    from vocabularies.models import Vocabulary  # the model only once a name is asked for

    stored = (
        Vocabulary.objects.filter(owner_id=user_id, name=vocabulary).values_list("terms", flat=True).first()
    )
    if stored is None:
        raise KeytermError("unknown_vocabulary", f"You have no vocabulary named {vocabulary[:64]!r}.")
    return clean_keyterms([*clean_keyterms(stored), *terms])

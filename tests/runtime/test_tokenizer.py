"""Tokenizers trained on English text still encode and decode the letters of other Latin-script languages."""

from __future__ import annotations

from specc.runtime.config import TokenizerConfig
from specc.runtime.data.tokenizer import TextTokenizer, _train

ENGLISH = ["Return the value of the named attribute of object. Raise ValueError if the string is empty."] * 40


def test_a_unigram_vocabulary_trained_on_english_round_trips_german_and_french() -> None:
    tok = TextTokenizer(_train(TokenizerConfig(kind="unigram", vocab_size=200, sentinels=0), ENGLISH))
    for text in ["Die müde Katze öffnet die grüne Tür der Brücke.", "Le garçon a mangé à côté de l'église."]:
        ids = tok.encode(text)
        assert tok.specials.unk not in ids
        assert tok.decode(ids) == text

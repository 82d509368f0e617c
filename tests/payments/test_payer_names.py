"""Payer names as Australian banks send them, against the names staff expect."""

from __future__ import annotations

import pytest

from payments.services.names import SIMILARITY_THRESHOLD, is_similar, normalise, similarity


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Acme Pty Ltd", ("ACME",)),
        ("ACME P/L", ("ACME",)),
        ("Acme Pty. Limited", ("ACME",)),
        ("acme proprietary limited", ("ACME",)),
        ("J.A. Smith", ("J", "A", "SMITH")),
        ("Mr John Smith", ("JOHN", "SMITH")),
        ("O'Brien & Sons", ("OBRIEN", "AND", "SONS")),
        ("José Núñez", ("JOSE", "NUNEZ")),
        ("  ", ()),
    ],
)
def test_a_name_is_reduced_to_its_words(name, words):
    assert normalise(name) == words


@pytest.mark.parametrize(
    ("paid_by", "expected"),
    [
        ("ACME P/L", "Acme Pty Ltd"),  # legal suffix spelled another way
        ("acme pty. limited", "ACME PTY LTD"),  # case and punctuation
        ("J SMITH", "John Smith"),  # initial for the given name
        ("SMITH JOHN", "John Smith"),  # surname first
        ("SMITH J", "John Smith"),
        ("JOHN A SMITH", "John Smith"),  # a middle initial the other leaves out
        ("J.A. SMITH", "John Andrew Smith"),
        ("JA SMITH", "John Andrew Smith"),  # initials run together
        ("SMITH JA", "John Andrew Smith"),
        ("JOHN SMTIH", "John Smith"),  # a slip of the keyboard
        ("ACME INTERNATION", "Acme International Trading Pty Ltd"),  # cut at 16 characters
        ("ACME INTERNATIONAL TRADING PTY L", "Acme International Trading Pty Ltd"),  # at 32
        ("MR J SMITH T/AS SMITH PLUMBING", "Smith Plumbing Pty Ltd"),  # trading as
        ("JOSE NUNEZ", "José Núñez"),
    ],
)
def test_the_same_payer_written_another_way_is_similar(paid_by, expected):
    assert is_similar(paid_by, expected), similarity(paid_by, expected)


@pytest.mark.parametrize(
    ("paid_by", "expected"),
    [
        ("JANE SMITH", "John Smith"),  # another person with the same surname
        ("SMITH", "John Smith"),  # a surname alone says too little
        ("JOHN SMITH", "John Smithers"),  # a short name is a whole name, not a cut one
        ("ACME HOLDINGS", "Acme International"),
        ("Test Payer", "Demo Company Pty Ltd"),
        ("", "John Smith"),
        ("PTY LTD", "Acme Pty Ltd"),  # the legal form alone names no one
        ("LI WEI", "Lucy Ingram"),  # a short name is not always initials
        ("JA SMITH", "Paul Smith"),
    ],
)
def test_another_payer_is_not_similar(paid_by, expected):
    assert not is_similar(paid_by, expected), similarity(paid_by, expected)


def test_the_score_is_symmetric_and_runs_from_zero_to_one():
    pairs = [("J SMITH", "John Smith"), ("ACME INTERNATION", "Acme International Trading")]
    for a, b in pairs:
        assert similarity(a, b) == similarity(b, a)
    assert similarity("Acme Pty Ltd", "ACME P/L") == 1.0
    assert similarity("Acme", "Zenith") == 0.0
    assert 0 < SIMILARITY_THRESHOLD < 1

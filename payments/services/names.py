"""Payer names as Australian banks hand them to us, made comparable.

A deposit's payer name (`sender_account_name`) is whatever the paying bank put in the account
title: upper case or not, with or without punctuation, "PTY LTD", "P/L", "PTY. LIMITED" or
nothing, initials for given names ("J A SMITH"), surname first ("SMITH JOHN"), and cut at the
bank's field length (BECS direct entry carries 16 characters of remitter name and 32 of account
title), often in the middle of a word. The expected payment says "John Smith" or "Acme Pty Ltd".

`normalise` reduces a name to its words (no case, accents, punctuation, legal suffixes or
titles); `similarity` scores two names from 0 (nothing alike) to 1 (the same name), and
`is_similar` says whether they are alike enough to be the same payer: a score of at least
SIMILARITY_THRESHOLD. The standard library's difflib scores spelling slips within a word; no
dependency is needed for names this short.

How the score is made (the highest of):
- the words, paired regardless of order: two equal words count 1, an initial and a word it
  begins count INITIAL_WEIGHT, two words that difflib finds at least WORD_RATIO alike count their
  ratio; the sum counted twice over both names' words, where a lone initial the other name
  lacks weighs half (a middle initial is often left out);
- a name cut at a bank's field length: when the shorter name is at least TRUNCATED_AT characters
  long as written (BECS's 16-character remitter name, less a trailing space: shorter names are
  whole names, so "JOHN SMITH" is not a cut "JOHN SMITHERS") and its words, run together, begin
  the longer name's, TRUNCATED_SCORE.
A "trading as" name ("J SMITH T/AS SMITH PLUMBING") is compared by each of its parts, and a
word of two or three letters also as run-together initials ("JA SMITH" is J A SMITH).

With the threshold at 0.8: "ACME P/L" ~ "Acme Pty Ltd" (1.0), "J SMITH" ~ "John Smith" (0.95),
"SMITH JOHN" ~ "John Smith" (1.0), "JOHN A SMITH" ~ "John Smith" (0.89), "JA SMITH" ~ "John
Andrew Smith" (0.93), "JOHN SMTIH" ~
"John Smith" (0.9), "ACME INTERNATION" ~ "Acme International Trading Pty Ltd" (0.95); but
"JANE SMITH" is not "John Smith" (0.5), nor "SMITH" alone (0.67), nor "ACME HOLDINGS" "Acme
International" (0.5).
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

SIMILARITY_THRESHOLD = 0.8
INITIAL_WEIGHT = 0.9
WORD_RATIO = 0.8
TRUNCATED_AT = 15
TRUNCATED_SCORE = 0.95

# Legal forms: words that say what kind of entity, not which. "P/L" is read as "PTY LTD"
# before the slash goes (below), and "CO" is left alone ("CO" can be a name's own word).
LEGAL_WORDS = frozenset(
    {
        "PTY",
        "PTE",
        "PROPRIETARY",
        "LTD",
        "LIMITED",
        "INC",
        "INCORPORATED",
        "LLC",
        "PLC",
        "CORP",
        "CORPORATION",
        "PL",
        "NL",
        "ABN",
        "ACN",
    }
)
TITLES = frozenset({"MR", "MRS", "MS", "MISS", "MX", "DR", "PROF", "SIR", "THE"})
_TRADING_AS = re.compile(r"\b(?:T/AS|T/A|TRADING AS|TRADES AS)\b")
_P_L = re.compile(r"\bP\s*/\s*L\b")
_NOT_WORD = re.compile(r"[^A-Z0-9]+")


def _ascii_upper(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def _words(part: str) -> tuple[str, ...]:
    part = _P_L.sub(" PTY LTD ", part).replace("&", " AND ")
    # Apostrophes join ("O'BRIEN" is OBRIEN); every other mark separates ("J.A." is J A).
    part = part.replace("'", "").replace("\u2019", "")
    words = [w for w in _NOT_WORD.split(part) if w]
    words = [w for w in words if w not in LEGAL_WORDS and w not in TITLES]
    return tuple(words)


def normalise(name: str) -> tuple[str, ...]:
    """The words of a payer name, upper case, without accents, punctuation, legal form or title."""
    return _words(_ascii_upper(name or ""))


def _parts(name: str) -> list[tuple[str, ...]]:
    """The name and, for a "trading as" name, each side of it; empty parts dropped."""
    upper = _ascii_upper(name or "")
    parts = [_words(upper)]
    if _TRADING_AS.search(upper):
        parts += [_words(p) for p in _TRADING_AS.split(upper)]
    return [p for p in parts if p]


@lru_cache(maxsize=65536)  # word pairs repeat across a sync's thousands of deposits
def _pair(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) == 1 or len(b) == 1:
        short, long = (a, b) if len(a) <= len(b) else (b, a)
        return INITIAL_WEIGHT if len(short) == 1 and long.startswith(short) else 0.0
    ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
    return ratio if ratio >= WORD_RATIO else 0.0


def _weight(word: str) -> float:
    return 0.5 if len(word) == 1 else 1.0


def _word_score(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Words paired greedily, best pairs first, whatever their order."""
    pairs = sorted(
        ((_pair(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)),
        reverse=True,
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = 0.0
    for score, i, j in pairs:
        if score <= 0:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        total += score
    # Matched words weigh 1 on each side; a word left over weighs 1, a lone initial 0.5.
    weight: float = 2 * len(used_a)
    weight += sum(_weight(w) for i, w in enumerate(a) if i not in used_a)
    weight += sum(_weight(w) for j, w in enumerate(b) if j not in used_b)
    return 2 * total / weight if weight else 0.0


def _truncated_score(a: str, b: str) -> float:
    """A name cut at a bank's field length, maybe mid-word, is the start of the other."""
    short, long = sorted(
        (" ".join(_ascii_upper(a).split()), " ".join(_ascii_upper(b).split())), key=len
    )
    if len(short) < TRUNCATED_AT:
        return 0.0
    cut = list(_words(short))
    # "... PTY LIMITED" cut as "... PTY L": the stub of a legal word is no word of the name.
    if len(cut) > 1 and len(cut[-1]) < 4 and any(w.startswith(cut[-1]) for w in LEGAL_WORDS):
        cut.pop()
    joined_short, joined_long = "".join(cut), "".join(_words(long))
    if len(joined_short) >= TRUNCATED_AT // 2 and joined_long.startswith(joined_short):
        return TRUNCATED_SCORE
    return 0.0


def _initials_apart(words: tuple[str, ...]) -> tuple[str, ...]:
    """Run-together initials apart: banks write "JA SMITH" for J. A. Smith."""
    out: list[str] = []
    for w in words:
        out.extend(w if 2 <= len(w) <= 3 and w.isalpha() else [w])
    return tuple(out)


@lru_cache(maxsize=16384)  # a pure function of two names: sync asks about the same ones often
def similarity(a: str, b: str) -> float:
    """How alike two payer names are, from 0 to 1 (see the module's docstring)."""
    best = 0.0
    for x in _parts(a):
        for y in _parts(b):
            if x == y:
                return 1.0
            best = max(
                best,
                _word_score(x, y),
                _word_score(_initials_apart(x), y),
                _word_score(x, _initials_apart(y)),
            )
    return round(max(best, _truncated_score(a or "", b or "")), 4)


def is_similar(a: str, b: str) -> bool:
    """Alike enough to be the same payer (similarity at least SIMILARITY_THRESHOLD)."""
    return similarity(a, b) >= SIMILARITY_THRESHOLD


def matches_any(name: str, candidates: list[str]) -> bool:
    """`name` is alike one of `candidates` (blank candidates are skipped)."""
    return any(is_similar(name, c) for c in candidates if c and c.strip())

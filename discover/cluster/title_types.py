"""The product type each title names, and proposals whose titles name several.

A catalog rarely has a truth column, so a curator cannot see which proposals hold several
types and want splitting: HDBSCAN's stability does not tell them (on fashion-small its rank
correlation with purity is about 0), and the linkage merge can join clean clusters through a
mixed one. The titles can: a title names its type at the type end ("Lakme Absolute Kohl
Ultimate Kajal", "Nike Men Blue Sports Shoes"), so the type word of a title is its word
nearest that end that is telling of type (:meth:`WordConcentration.typical_weight`), outside
the brand's name, neither a word of a brand's product line nor a unit, and a word, not a code
("V.Br", "119"). A proposal whose commonest type word is said by under half the titles that
name one is flagged "mixed titles", with the types they name.

The type word is the head of the type phrase: "Sports Shoes" and "Formal Shoes" both name
"shoes", so the flag is conservative: it says a proposal names several types, never that
one type holds several kinds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from discover.cluster.phrases import JOINING_WORDS
from discover.words import WordConcentration, stem

MIXED_SHARE = 0.5  # a proposal whose commonest type word is said by fewer of its titles names several
MIXED = "mixed titles"  # how the flag starts
SHOWN_TYPES = 3


def _is_word(token: str) -> bool:
    """Letters (a hyphen inside allowed: "t-shirt"), three or more: not a shade code or a size."""
    return len(token) >= 3 and token.replace("-", "").isalpha() and token not in JOINING_WORDS


def type_word(tokens: Sequence[str], known: WordConcentration, typical: float) -> str | None:
    """The word of a tokenised title that names its type, as said, or None.

    Example:
        >>> titles = ["acme men black shoes", "acme men blue shirt", "zeta women red shoes", "zeta men shirt"] * 3
        >>> known = WordConcentration(min_count=2).fit(titles, ["footwear", "topwear"] * 6)
        >>> type_word(["zeta", "women", "red", "shoes", "119"], known, known.typical_weight())
        'shoes'
    """
    brand = known.brand_span(tokens)
    order = range(len(tokens) - 1, -1, -1) if known.anchor_ == "end" else range(len(tokens))
    for index in order:
        token = tokens[index]
        if index in brand or not _is_word(token) or token in known.line_words_ or token in known.unit_words_:
            continue
        if known.weights_.get(token, 0.0) >= typical:
            return token
    return None


def type_words(titles: Sequence[Sequence[str]], known: WordConcentration) -> list[str | None]:
    """Each tokenised title's type word, as said, or None."""
    typical = known.typical_weight()
    return [type_word(tokens, known, typical) for tokens in titles]


def type_stems(titles: Sequence[Sequence[str]], known: WordConcentration) -> list[str | None]:
    """Each tokenised title's type word, stemmed ("kajals" and "kajal" are one type), or None."""
    return [None if word is None else stem(word) for word in type_words(titles, known)]


def agreement(stems: Iterable[str | None]) -> float | None:
    """The commonest type's share of the titles that name one (:func:`type_stems`), or None.

    Example:
        >>> agreement(["kajal", "kajal", None, "compact", float("nan")])
        0.6666666666666666
    """
    counts = Counter(s for s in stems if isinstance(s, str))  # not None, nor a frame's NaN
    return max(counts.values()) / sum(counts.values()) if counts else None


def type_shares(titles: Sequence[Sequence[str]], known: WordConcentration) -> list[tuple[str, float]]:
    """Each type word (stemmed together, shown as most often said) with its share of the titles
    that name a type, commonest first."""
    said: dict[str, Counter] = defaultdict(Counter)
    for word in filter(None, type_words(titles, known)):
        said[stem(word)][word] += 1
    total = sum(sum(forms.values()) for forms in said.values())
    shares = [(forms.most_common(1)[0][0], sum(forms.values()) / total) for forms in said.values()]
    return sorted(shares, key=lambda pair: (-pair[1], pair[0]))


def mixed_flags(titles: Sequence[Sequence[str]], known: WordConcentration | None) -> list[str]:
    """A warning when no type word is said by half the titles that name one.

    Example:
        >>> titles = ["acme kajal", "zeta kajal", "acme foundation", "zeta compact", "acme blush"] * 4
        >>> known = WordConcentration(min_count=2).fit(titles + ["acme shoes"] * 8, ["makeup"] * 20 + ["shoes"] * 8)
        >>> mixed_flags([t.split() for t in titles], known)
        ['mixed titles: 40% “Kajal”, 20% “Blush”, 20% “Compact”']
        >>> mixed_flags([t.split() for t in titles[:3]] * 4, known)  # two in three titles say "kajal"
        []
    """
    if known is None:  # without known categories no word is telling of type
        return []
    shares = type_shares(titles, known)
    if not shares or shares[0][1] >= MIXED_SHARE:  # under half: at least two types
        return []
    named = ", ".join(f"{share:.0%} “{word.title()}”" for word, share in shares[:SHOWN_TYPES])
    return [f"{MIXED}: {named}"]


def whole_category_flags(titles: Sequence[Sequence[str]], known: WordConcentration | None, smallest: int) -> list[str]:
    """The flag of a category left whole: its titles' mixed flag, unless it holds fewer products
    than `smallest` (the smallest proposal discovery makes: three products of three types are
    not worth a split). Discovery (``tree.json``) and the explorer's page of it read this one rule."""
    return mixed_flags(titles, known) if len(titles) >= smallest else []


def without_mixed(flags: list[str]) -> list[str]:
    """A proposal's flags once its child proposals part its types: no longer "mixed titles"."""
    return [flag for flag in flags if not flag.startswith(MIXED)]

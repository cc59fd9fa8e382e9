"""Candidate names for sibling proposals: phrases of the titles, ranked by how well they
say what sets one proposal apart, weighted towards words that carry product type.

A candidate is a run of one to three consecutive words of a title, so a name keeps the
titles' own word order ("Sports Shoes", never "Shoes Sports"). For proposal i and phrase t,
with tf the share of titles containing t, inside i and inside its siblings:

    score = tf_i · log(1 + tf_i / (tf_siblings + 0.01)) · type(t) · position(t)

type(t) is the mean known-level concentration of its words
(:class:`discover.words.WordConcentration`), position(t) the mean learnt weight of where it
sits in the titles. A phrase found mostly in the brand's name (the word at the end of the
titles opposite the type words, and the words that nearly always follow it there: "SDL by
Sweet Dreams") is never a name, nor one with a word that names a brand's product line
("Enticer", found after "Casio" only) or a unit of measure ("Ml", found after a number:
"Perfume 100 ml"), nor one that starts or ends with a joining word ("For Bag", the middle
of the brand "Be For Bag").

A name that only says its category's own name ("Watches" under Watches) sets nothing apart.
Where that is a proposal's best phrase and it has siblings, its name is the best phrase that
adds a word telling of type to the category's name (not a colour: "Black Watch"), scored by
the type weight of the added words alone, among those said in at least a quarter of its
titles; where none is, it is "Other <category>": the rest of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from discover.words import WordConcentration, stem, stems

MAX_WORDS = 3
CANDIDATES = 20
SAME_TITLES = 0.9  # a phrase said this often with one neighbouring word gives way to the pair
BRAND_SHARE = 0.5  # a proposal whose titles share one brand-end word this often is flagged
BEYOND_CATEGORY_SUPPORT = 0.25  # a name that replaces its category's own is said this often
# a name neither starts nor ends with a word that only joins others: "For Bag" is the middle
# of the brand "Be For Bag", "By Sweet" of "SDL by Sweet Dreams"
JOINING_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}
)


def _brand_index(length: int, known: WordConcentration | None) -> int:
    """Index of the title word at the brand end (the first, unless type words come first)."""
    return known.brand_index(length) if known is not None else 0


def _brand_span(tokens: Sequence[str], known: WordConcentration | None) -> range:
    """Indices of the words naming the title's brand: the brand-end word and the rest of a
    brand name of several words ("SDL by Sweet Dreams")."""
    return known.brand_span(tokens) if known is not None else range(min(len(tokens), 1))


def without_brand(tokens: Sequence[str], known: WordConcentration | None = None) -> list[str]:
    """A title's words but those naming its brand: what keywords are drawn from.

    Example:
        >>> without_brand(["murcia", "women", "brown", "handbag"])
        ['women', 'brown', 'handbag']
    """
    brand = _brand_span(tokens, known)
    return [word for index, word in enumerate(tokens) if index not in brand]


class _Tally:
    """Per phrase: titles holding it, in how many only within the brand's name, summed
    position weight."""

    def __init__(self, titles: Sequence[Sequence[str]], known: WordConcentration | None) -> None:
        self.titles = max(len(titles), 1)
        self.count: Counter = Counter()
        self.at_brand: Counter = Counter()
        self.position: Counter = Counter()
        for tokens in titles:
            where = known.position_weight(len(tokens)) if known is not None else np.ones(len(tokens))
            brand = _brand_span(tokens, known)
            first: dict[tuple[str, ...], int] = {}  # phrase → where it is first said
            outside_brand: set[tuple[str, ...]] = set()  # said at least once beyond the brand's name
            for size in range(1, MAX_WORDS + 1):
                for start in range(len(tokens) - size + 1):
                    phrase = tuple(tokens[start : start + size])
                    first.setdefault(phrase, start)
                    if start >= brand.stop or start + size <= brand.start:
                        outside_brand.add(phrase)
            for phrase, start in first.items():
                self.count[phrase] += 1
                self.at_brand[phrase] += phrase not in outside_brand
                self.position[phrase] += float(where[start : start + len(phrase)].max())


def _type_weight(phrase: tuple[str, ...], known: WordConcentration | None) -> float:
    if known is None:
        return 1.0
    return float(np.mean([known.weights_.get(word, 0.0) for word in phrase]))


def _never_a_name(phrase: tuple[str, ...], known: WordConcentration | None) -> bool:
    """A phrase that starts or ends with a joining word, or holds a word of a brand's product
    line or a unit of measure."""
    if phrase[0] in JOINING_WORDS or phrase[-1] in JOINING_WORDS:
        return True
    return known is not None and any(word in known.line_words_ or word in known.unit_words_ for word in phrase)


def _prefer_longer(scores: dict[tuple[str, ...], float], count: Counter, telling: Callable[[str], bool]) -> None:
    """Where a one-word candidate is nearly always said with the same neighbouring word, and
    that word is `telling` of type, the pair takes its place and its score: "Nail Lacquer",
    not "Lacquer"; but "Ring", never "Men Ring"."""
    pairs: dict[tuple[str, ...], list[tuple[str, ...]]] = {}  # word → its pairs with a telling neighbour
    for pair in (p for p in scores if len(p) == 2 and scores[p] > 0):
        first, second = pair
        if telling(first):
            pairs.setdefault((second,), []).append(pair)
        if telling(second):
            pairs.setdefault((first,), []).append(pair)
    own = dict(scores)
    for word, candidates in pairs.items():
        if own.get(word, 0.0) <= 0:  # only one-word names take a neighbour: a pair already says which kind
            continue
        longer = [p for p in candidates if count[p] >= SAME_TITLES * count[word]]
        if longer:
            best = max(longer, key=lambda p: (count[p], own[p], p))
            scores[best], scores[word] = max(scores[best], own[word]), 0.0


def ranked_phrases(
    titles_by_child: Sequence[Sequence[Sequence[str]]], known: WordConcentration | None = None, category: str = ""
) -> list[list[str]]:
    """The best candidate names of each sibling (tokenised titles in), best first, title-cased;
    `category` is the name of the existing category they are proposed in.

    Example:
        >>> titles = [[["nike", "sports", "shoes"]] * 4, [["nike", "formal", "shoes"]] * 4]
        >>> [names[0] for names in ranked_phrases(titles)]
        ['Sports Shoes', 'Formal Shoes']
        >>> dial = [["titan", "dial", "watch"]] * 4
        >>> rest = [["q", "steel", "watch"], ["q", "steel", "watch"], ["q", "watch"], ["q", "watch"]]
        >>> [names[0] for names in ranked_phrases([dial, rest], category="Watches")]
        ['Dial Watch', 'Steel Watch']
        >>> [names[0] for names in ranked_phrases([dial, [["q", "watch"]] * 4], category="Watches")]
        ['Dial Watch', 'Other Watches']
    """
    tallies = [_Tally(titles, known) for titles in titles_by_child]
    typical = known.typical_weight() if known is not None else 0.0

    def telling(word: str) -> bool:  # more telling of type than the catalog's typical word, and not "by"
        return word not in ENGLISH_STOP_WORDS and (known is None or known.weights_.get(word, 0.0) >= typical)

    own_words = stems(category)

    def only_category(phrase: tuple[str, ...]) -> bool:  # says nothing its category's name does not
        return {stem(w) for w in phrase} <= own_words

    total_count = sum((t.count for t in tallies), Counter())
    total_titles = sum(t.titles for t in tallies)
    ranked = []
    for tally in tallies:
        rest_titles = max(total_titles - tally.titles, 1)
        scores, untyped = {}, {}
        for phrase, count in tally.count.items():
            if count < 2 or tally.at_brand[phrase] / count >= BRAND_SHARE or _never_a_name(phrase, known):
                continue
            tf = count / tally.titles
            tf_rest = (total_count[phrase] - count) / rest_titles
            position = tally.position[phrase] / count
            untyped[phrase] = tf * np.log1p(tf / (tf_rest + 0.01)) * position
            scores[phrase] = untyped[phrase] * _type_weight(phrase, known)
        _prefer_longer(scores, tally.count, telling)
        best = sorted((p for p in scores if scores[p] > 0), key=lambda p: (-scores[p], -len(p), p))[:CANDIDATES]
        names = [" ".join(phrase).title() for phrase in best]
        if best and len(tallies) > 1 and own_words and only_category(best[0]):
            beyond = _beyond_category([p for p in scores if scores[p] > 0], untyped, tally, own_words, known, telling)
            # then, where a sibling took those, the other phrases that say more than the category
            rest = [" ".join(phrase).title() for phrase in best if not only_category(phrase)]
            names = [" ".join(phrase).title() for phrase in beyond] + [f"Other {category}"] + rest
        ranked.append(names)
    return ranked


def _beyond_category(
    candidates: list[tuple[str, ...]],
    untyped: dict[tuple[str, ...], float],
    tally: _Tally,
    own_words: set[str],
    known: WordConcentration | None,
    telling: Callable[[str], bool],
) -> list[tuple[str, ...]]:
    """The `candidates` that add a `telling` word to the category's name (`own_words`,
    stemmed; "Black Watch" adds a colour) and are said in enough of the titles, best first,
    weighted by the type weight of the added words."""
    rescored = {}
    for phrase in candidates:
        added = tuple(w for w in phrase if stem(w) not in own_words)
        if any(map(telling, added)) and tally.count[phrase] >= BEYOND_CATEGORY_SUPPORT * tally.titles:
            rescored[phrase] = untyped[phrase] * _type_weight(added, known)
    return sorted((p for p in rescored if rescored[p] > 0), key=lambda p: (-rescored[p], -len(p), p))[:CANDIDATES]


def brand_flags(titles: Sequence[Sequence[str]], known: WordConcentration | None = None) -> list[str]:
    """A warning when most titles share one word at the brand end ("brand-dominated: 92% “Nike”").

    Example:
        >>> brand_flags([["nike", "red", "shoes"], ["nike", "blue", "shoes"], ["puma", "shoes"]])
        ['brand-dominated: 67% “Nike”']
    """
    firsts = Counter(tokens[_brand_index(len(tokens), known)] for tokens in titles if tokens)
    if not firsts:
        return []
    word, count = firsts.most_common(1)[0]
    share = count / sum(firsts.values())
    brand = known.brand_name(word, titles) if known is not None else word  # "Red Rose", not a colour's "Red"
    shown = " ".join(w if i and w in JOINING_WORDS else w.title() for i, w in enumerate(brand.split()))
    return [f"brand-dominated: {share:.0%} “{shown}”"] if share >= BRAND_SHARE else []

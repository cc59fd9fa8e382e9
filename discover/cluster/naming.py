"""Names and keywords for proposals: type phrases for names, class-based TF-IDF for keywords.

c-TF-IDF (the idea in BERTopic, Grootendorst 2022): all titles of one cluster form one
document; a term's weight is its frequency in that document times
``log(1 + A / f_t)``, with A the average number of words per cluster and f_t the term's
frequency over all sibling clusters. Terms every sibling shares (the parent's own words)
sink; terms that set a cluster apart rise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from discover.cluster.phrases import brand_flags, ranked_phrases, without_brand
from discover.cluster.title_types import mixed_flags
from discover.words import WordConcentration, stems, words


class ClassTfidf:
    """c-TF-IDF over one document per class.

    Attributes:
        vocabulary_: the terms, aligned with the columns of `weights_`.
        weights_: classes × terms matrix.

    Example:
        >>> model = ClassTfidf().fit(["red heels heels", "white sneakers"])
        >>> model.top_terms(0, 1)
        ['heels']
    """

    def __init__(self, ngram_range: tuple[int, int] = (1, 1), min_df: int = 1) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df

    def fit(self, documents: Sequence[str]) -> ClassTfidf:
        vectorizer = CountVectorizer(
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            stop_words="english",
            token_pattern=r"(?u)\b[^\W\d_][\w-]+\b",
        )
        try:
            counts = vectorizer.fit_transform(documents).toarray().astype(np.float64)
        except ValueError:  # no terms at all
            self.vocabulary_, self.weights_ = np.array([], dtype=str), np.zeros((len(documents), 0))
            return self
        tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        average_words = counts.sum() / max(len(documents), 1)
        idf = np.log(1 + average_words / np.maximum(counts.sum(axis=0), 1))
        self.vocabulary_ = vectorizer.get_feature_names_out()
        self.weights_ = tf * idf
        return self

    def top_terms(self, index: int, k: int) -> list[str]:
        row = self.weights_[index]
        order = np.lexsort((self.vocabulary_, -row))  # weight desc, ties alphabetical
        return [str(self.vocabulary_[i]) for i in order[:k] if row[i] > 0]


def name_from_keywords(keywords: Sequence[str], taken: set[str], words: int = 2) -> str:
    """A short display name from the top keywords, unique among siblings (the fallback)."""
    if not keywords:
        return "unnamed"
    name = " ".join(keywords[:words]).title()
    extra = words
    while name in taken and extra < len(keywords):
        name = " ".join(keywords[: extra + 1]).title()
        extra += 1
    return name if name not in taken else f"{name} ({len(taken) + 1})"


@dataclass
class Named:
    """A proposal's name, its keywords and any warning about it."""

    name: str
    keywords: list[str]
    flags: list[str] = field(default_factory=list)


def name_siblings(
    titles_by_child: Sequence[Sequence[str]],
    keywords: int = 8,
    known: WordConcentration | None = None,
    category: str = "",
) -> list[Named]:
    """Names, keywords and flags for sibling clusters, each scored against the others.

    A name is the best phrase of :func:`discover.cluster.phrases.ranked_phrases` (in the
    titles' own word order, weighted by what `known` says carries type, saying more than the
    name of the existing `category` they are proposed in), never one taken by a sibling;
    keywords are c-TF-IDF terms of the titles without their brands. A proposal whose titles
    mostly share one word at the brand end of the title is flagged, not named after it; one
    whose titles name several types is flagged with them
    (:func:`discover.cluster.title_types.mixed_flags`).
    """
    tokenised = [[words(t) for t in titles] for titles in titles_by_child]
    # keywords say what the products are: a brand is in the card's share line and flags
    model = ClassTfidf().fit([" ".join(" ".join(without_brand(t, known)) for t in titles) for titles in tokenised])
    ranked = ranked_phrases(tokenised, known, category)
    order = sorted(range(len(titles_by_child)), key=lambda i: -len(titles_by_child[i]))  # largest picks first
    taken: set[str] = set()
    named: dict[int, Named] = {}
    for index in order:
        terms = model.top_terms(index, keywords)
        name = next((p for p in ranked[index] if p not in taken), None) or name_from_keywords(terms, taken)
        taken.add(name)
        flags = brand_flags(tokenised[index], known) + mixed_flags(tokenised[index], known)
        named[index] = Named(name, terms, flags)
    return [named[i] for i in range(len(titles_by_child))]


NAMES_IN_A_PARENT = 4  # a parent named after more children than this ends "& N more"
KIND_SHARE = 0.5  # a child whose titles say its parent's name this often is a kind of it


def name_from_children(name: str, children: Sequence[str], titles: Sequence[Sequence[str]]) -> str:
    """The name of a proposal the cascade split further, from its children's names (largest
    child first) and their titles. A parent is named, like its siblings, by what sets it apart
    from them, which is often its largest child's type: "Polo T-Shirt" over a polo shirt and a
    sweater child, read as "a sweater is a kind of polo shirt". Where every child is a kind of
    the parent (its name, or half its titles, say the parent's name: "Silk Clutch", or a "Set"
    whose titles say "Pendant Set"), the parent's name stays.

    Example:
        >>> polo, sweater = ["Polo T-Shirt"] * 3, ["Wool Sweater"] * 2
        >>> name_from_children("Polo T-Shirt", ["Polo T-Shirt", "Sweater"], [polo, sweater])
        'Polo T-Shirt & Sweater'
        >>> name_from_children("Pendant", ["Chain", "Set"], [["Pendant with Chain"], ["Pendant Set", "Gold Set"]])
        'Pendant'
        >>> name_from_children("Top", ["Jacket", "Sweatshirt", "Jersey", "Cardigan", "Shrug"], [[]] * 5)
        'Jacket, Sweatshirt, Jersey & 2 more'
    """
    own = stems(name)

    def kind_of_parent(child: str, said: Sequence[str]) -> bool:
        return own <= stems(child) or sum(own <= stems(t) for t in said) >= KIND_SHARE * max(len(said), 1)

    if not children or all(kind_of_parent(c, t) for c, t in zip(children, titles, strict=True)):
        return name
    if len(children) > NAMES_IN_A_PARENT:
        shown = NAMES_IN_A_PARENT - 1
        return ", ".join(children[:shown]) + f" & {len(children) - shown} more"
    return ", ".join(children[:-1]) + " & " + children[-1] if len(children) > 1 else children[0]

"""Words of titles and what the known levels of a catalog say about them.

A word that spreads evenly over the known categories (a colour, "Men", "new") says nothing
about product type; a word concentrated in a few known categories ("Sandals", "Kurta")
does. :class:`WordConcentration` learns, from the titles and the existing category of each
product (never the hidden level), one weight per word and adjacent word pair: one minus
the normalised entropy of its size-corrected distribution over the known categories. It
also learns where in a title type words sit: the mean concentration of the words at each
position counted from the start and from the end; the end whose own word (first or last)
is more concentrated is the anchor. Nothing about the language or the catalog is hard-coded. Used by the
``known-level-words`` embedder and by proposal names.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from discover.tree import known_labels

LINE_SHARE = 0.95  # a word found this often after one brand names that brand's product line
BRAND_NAME_SHARE = 0.9  # a word found this often right after a brand-end word is the rest of its name
GENERIC_SHARE = 0.03  # ... unless it follows this share of all brands' brand-end words (a gender, a colour)
UNIT_SHARE = 0.8  # a word found this often right after a number is a unit ("100 ml"), not a type
POSITIONS = 9  # positions 0..7 from the anchor, then one bucket for the rest
_WORD = re.compile(r"[^\W\d_][\w-]*")
_WORD_OR_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_][\w-]*")

Term = str | tuple[str, str]


def words(title: str) -> list[str]:
    """Lower-cased words of a title, in order (numbers and punctuation dropped).

    Example:
        >>> words("Nike Men's Black Running-Shoes 42")
        ['nike', 'men', 's', 'black', 'running-shoes']
    """
    return _WORD.findall(title.lower())


def stem(word: str) -> str:
    """A crude plural/suffix stem, enough to match a name's word with a type's.

    Example:
        >>> [stem(w) for w in ("Shoes", "shoe", "T-Shirts", "dresses", "dress", "Watches")]
        ['sho', 'sho', 'tshirt', 'dress', 'dress', 'watch']
    """
    word = word.lower().replace("-", "")
    if word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def stems(text: str) -> set[str]:
    """The stems of a text's words: what two names, or a name and a title, share.

    Example:
        >>> sorted(stems("Sports Shoes")) == sorted(stems("sport shoe"))
        True
    """
    return {stem(w) for w in words(text)}


def _terms(tokens: Sequence[str]) -> list[Term]:
    """Distinct words and adjacent pairs, in title order: never a set, whose order changes with
    each process's string hashing (and with it the vocabulary's column order, and the SVD)."""
    return list(dict.fromkeys([*tokens, *zip(tokens, tokens[1:], strict=False)]))


class WordConcentration:
    """How much each word (and adjacent word pair) tells about the known category.

    Attributes:
        categories_: the known categories it was fitted on.
        weights_: term → concentration in [0, 1]; terms seen fewer than `min_count` times
            are left out (weight 0). With a single known category every term weighs 1.
        anchor_: ``"start"`` or ``"end"``: where type words sit in these titles.
        line_words_: words that name one brand's product line, never a type.
        brand_names_: brand-end word → the words that follow it in nearly all its titles, the
            rest of the brand's name ("sdl" → "by sweet dreams", "latin" → "quarters").
        not_brand_words_: words never taken into a brand's name: those that follow the
            brand-end word of many brands (genders, colours) or sit mostly at the type end.
        unit_words_: words that nearly always follow a number ("ml" in "Perfume 100 ml"):
            units of measure, never a type, though they sit where type words do.
        position_weights_: weight per position from the anchor (the last bucket holds the
            rest), the best position at 1.

    Example:
        >>> titles = ["red heels", "bright blue heels", "red shirt", "bright blue shirt"] * 3
        >>> model = WordConcentration(min_count=2, smoothing=0.1).fit(titles, ["shoes", "shoes", "tops", "tops"] * 3)
        >>> round(model.weights_["heels"], 2), round(model.weights_["red"], 2)
        (0.93, 0.0)
        >>> model.anchor_
        'end'
    """

    def __init__(self, min_count: int = 3, smoothing: float = 1.0) -> None:
        self.min_count = min_count
        self.smoothing = smoothing

    def fit(self, titles: Sequence[str], known: Sequence[str]) -> WordConcentration:
        """Learn the weights from `titles` and each one's known category (a path joined by `` > ``).

        Where some paths are deeper than others (leaves known in some branches, protocol B),
        a term weighs what the more telling of the two levels says: its concentration over the
        finest known categories, or over the level every product has. A type word of a branch
        whose leaves are hidden ("Heels" under Shoes) is concentrated in that branch's one
        category either way; a word that types share across branches ("Sports" in Sports
        Shoes and Sports Sandals) is spread over fine leaves but not over the shared level.
        """
        labels = np.asarray(known, dtype=object).astype(str)
        tokenised = [words(t) for t in titles]
        self.categories_, self.weights_ = self._weights(tokenised, labels)
        depths = np.char.count(labels.astype(str), " > ") if len(labels) else np.zeros(1, int)
        if depths.min() < depths.max():
            shared = np.array([" > ".join(label.split(" > ")[: depths.min() + 1]) for label in labels], dtype=object)
            _, coarse = self._weights(tokenised, shared)
            self.weights_ = {term: max(weight, coarse[term]) for term, weight in self.weights_.items()}
        if not any(self.weights_.values()):  # one known category: no word says more than another
            self.weights_ = dict.fromkeys(self.weights_, 1.0)
        self._fit_positions(tokenised)
        self._fit_lines(tokenised)
        self._fit_brand_names(tokenised)
        self._fit_units(titles)
        return self

    def _fit_units(self, titles: Sequence[str]) -> None:
        """Words seen at least `min_count` times, at least `UNIT_SHARE` of them right after a
        number: units of measure ("100 ml", "50 gm", "32 inch"), found by where they sit."""
        seen: Counter = Counter()
        after_number: Counter = Counter()
        for title in titles:
            previous = ""
            for token in _WORD_OR_NUMBER.findall(title.lower()):
                if not token[0].isdigit():
                    seen[token] += 1
                    after_number[token] += previous[:1].isdigit()
                previous = token
        self.unit_words_ = {
            word for word, count in seen.items() if count >= self.min_count and after_number[word] / count >= UNIT_SHARE
        }

    def _weights(self, tokenised: Sequence[Sequence[str]], labels: np.ndarray) -> tuple[np.ndarray, dict[Term, float]]:
        """The categories of `labels` and each term's concentration over them."""
        categories, codes = np.unique(labels, return_inverse=True)
        sizes = np.bincount(codes, minlength=len(categories)).astype(np.float64)
        prior = sizes / sizes.sum()
        counts: dict[Term, np.ndarray] = defaultdict(lambda: np.zeros(len(categories)))
        for tokens, code in zip(tokenised, codes, strict=True):
            for term in _terms(tokens):
                counts[term][code] += 1
        weights = {
            term: self._concentration(row, sizes, prior) for term, row in counts.items() if row.sum() >= self.min_count
        }
        return categories, weights

    def _fit_lines(self, tokenised: Sequence[Sequence[str]]) -> None:
        """Words that name a brand's product line ("Enticer" for Casio, "Diadem" for Royal):
        seen at least `min_count` times away from the brand end, in at least `LINE_SHARE` of
        those titles after one brand-end word (one that is not itself most of the catalog: a
        catalog of one brand says nothing), and mostly away from the type end (a type that
        one brand happens to sell, "Nail Lacquer", sits at the type end)."""
        brands: dict[str, Counter] = defaultdict(Counter)
        at_type_end: Counter = Counter()
        all_brands: Counter = Counter()
        for tokens in tokenised:
            if len(tokens) < 2:
                continue
            end = self.brand_index(len(tokens))
            brand = tokens[end]
            all_brands[brand] += 1
            at_type_end[tokens[len(tokens) - 1 - end]] += 1
            for word in dict.fromkeys(tokens[:end] + tokens[end + 1 :]):
                if word != brand:
                    brands[word][brand] += 1
        titles = max(sum(all_brands.values()), 1)
        self.line_words_: set[str] = set()
        for word, counts in brands.items():
            total = sum(counts.values())
            brand, count = counts.most_common(1)[0]
            if (
                total >= self.min_count
                and count / total >= LINE_SHARE
                and all_brands[brand] / titles < 0.5
                and at_type_end[word] / total < 0.5
            ):
                self.line_words_.add(word)

    def _fit_brand_names(self, tokenised: Sequence[Sequence[str]]) -> None:
        """The rest of each brand's name: the words that follow its brand-end word, towards the
        type end, in at least `BRAND_NAME_SHARE` of its titles (at least `min_count`), up to
        one found mostly at the type end ("Catwalk Women Heels" stops before "heels") or one
        that follows the brand-end word of many brands (at least `GENERIC_SHARE` of them: a
        gender or a colour, "Catwalk Women"). They name the brand, not a type, though a brand
        that sells one category makes them as concentrated as a type word: "Sweet" of "SDL by
        Sweet Dreams" named a nightwear proposal."""
        titles: dict[str, list[list[str]]] = defaultdict(list)
        seen: Counter = Counter()
        at_type_end: Counter = Counter()
        for tokens in tokenised:
            if len(tokens) < 2:
                continue
            toward_type = self._toward_type(tokens)
            titles[toward_type[0]].append(toward_type)
            at_type_end[toward_type[-1]] += 1
            seen.update(set(tokens))
        brands = [brand for brand, group in titles.items() if len(group) >= self.min_count]
        after: dict[str, set[str]] = defaultdict(set)  # word → the brands whose brand-end word it follows
        for brand in brands:
            for toward_type in titles[brand]:
                after[toward_type[1]].add(brand)
        generic = {word for word, which in after.items() if len(which) >= max(2, GENERIC_SHARE * len(brands))}
        # never part of a brand's name: a gender or a colour, or a word found mostly at the type end
        self.not_brand_words_ = generic | {word for word, count in seen.items() if at_type_end[word] / count >= 0.5}
        self.brand_names_: dict[str, tuple[str, ...]] = {}
        for brand in brands:
            rest = self._shared_continuation(titles[brand])
            if rest:
                self.brand_names_[brand] = rest

    def _shared_continuation(self, group: Sequence[Sequence[str]]) -> tuple[str, ...]:
        """The words after the brand-end word (titles brand end first) that at least
        `BRAND_NAME_SHARE` of `group` share, up to one of `not_brand_words_`."""
        rest: list[str] = []
        while True:
            following = Counter(t[len(rest) + 1] for t in group if len(t) > len(rest) + 1)
            if not following:
                return tuple(rest)
            word, count = following.most_common(1)[0]
            shared = sum(1 for t in group if len(t) > len(rest) + 1 and list(t[1 : len(rest) + 2]) == [*rest, word])
            if shared < BRAND_NAME_SHARE * len(group) or word in self.not_brand_words_:
                return tuple(rest)
            rest.append(word)

    def _toward_type(self, tokens: Sequence[str]) -> list[str]:
        """The title's words from the brand end to the type end."""
        return list(tokens) if self.anchor_ == "end" else list(reversed(tokens))

    def brand_name(self, word: str, titles: Sequence[Sequence[str]] | None = None) -> str:
        """The brand whose brand-end word is `word`, in full where its titles name it in
        several words ("sdl" → "sdl by sweet dreams"); with `titles` (tokenised), as those of
        them with that brand-end word name it: several brands start with "red", a proposal's
        may all be "red rose".

        Example:
            >>> titles = ["red rose women pink nightdress", "red rose girls blue robe", "red tape men shoes"] * 2
            >>> titles += ["acme men red shoes", "acme boys shoes"] * 2
            >>> known = WordConcentration(min_count=2).fit(titles, ["night"] * 2 + ["shoes"] * 8)
            >>> known.brand_name("red"), known.brand_name("red", [words(t) for t in titles[:2]])
            ('red', 'red rose')
        """
        if titles is None:
            rest = self.brand_names_.get(word, ())
        else:
            rest = self._shared_continuation([t for t in map(self._toward_type, titles) if t and t[0] == word])
        return " ".join([word, *rest] if self.anchor_ == "end" else [*reversed(rest), word])

    def brand_span(self, tokens: Sequence[str]) -> range:
        """Indices of the title's words that name its brand: the brand-end word and as much of
        the rest of that brand's name as this title says.

        Example:
            >>> sdl = ["sdl by sweet dreams women pink pyjama", "sdl by sweet dreams men nightdress"] * 2
            >>> titles = sdl + ["nike men red shoes", "puma men shirt", "puma women shoes", "nike women shirt"] * 2
            >>> known = WordConcentration(min_count=2).fit(titles, ["night"] * 4 + ["shoes", "shirt"] * 4)
            >>> known.brand_names_
            {'sdl': ('by', 'sweet', 'dreams')}
            >>> known.brand_span(words("SDL by Sweet Dreams Women Blue Pyjama")), known.brand_span(words("Nike Shoes"))
            (range(0, 4), range(0, 1))
        """
        if not tokens:
            return range(0)
        toward_type = self._toward_type(tokens)
        length = 1
        for word in self.brand_names_.get(toward_type[0], ()):
            if length >= len(toward_type) or toward_type[length] != word:
                break
            length += 1
        return range(length) if self.anchor_ == "end" else range(len(tokens) - length, len(tokens))

    def _concentration(self, row: np.ndarray, sizes: np.ndarray, prior: np.ndarray) -> float:
        if len(sizes) < 2:
            return 0.0
        rate = (row + self.smoothing * prior) / sizes  # a word's share of each category, size-corrected
        p = rate / rate.sum()
        entropy = -(p * np.log(np.where(p > 0, p, 1))).sum()
        return float(1 - entropy / np.log(len(sizes)))

    def _fit_positions(self, tokenised: Sequence[Sequence[str]]) -> None:
        tables = {}
        for anchor in ("start", "end"):
            total, count = np.zeros(POSITIONS), np.zeros(POSITIONS)
            for tokens in tokenised:
                for position, word in zip(self.positions(len(tokens), anchor), tokens, strict=True):
                    total[position] += self.weights_.get(word, 0.0)
                    count[position] += 1
            tables[anchor] = np.divide(total, count, out=np.zeros(POSITIONS), where=count > 0)
        self.anchor_ = max(tables, key=lambda a: tables[a][0])
        best = tables[self.anchor_].max()
        self.position_weights_ = tables[self.anchor_] / best if best > 0 else np.ones(POSITIONS)

    @staticmethod
    def positions(length: int, anchor: str) -> np.ndarray:
        """Each token's position bucket counted from `anchor`."""
        index = np.arange(length)
        return np.minimum(index if anchor == "start" else length - 1 - index, POSITIONS - 1)

    def brand_index(self, length: int) -> int:
        """Index of the title word at the brand end: the end opposite the type words."""
        return length - 1 if self.anchor_ == "start" else 0

    def position_weight(self, length: int) -> np.ndarray:
        """The weight of each position of a title of `length` tokens."""
        return self.position_weights_[self.positions(length, self.anchor_)]

    def typical_weight(self) -> float:
        """The median weight of a single word: a word weighing at least this tells more of
        type than the catalog's typical word does. Computed once per weights: naming asks for
        it for every sibling group and every proposal."""
        if getattr(self, "_typical_of", None) is not self.weights_:  # once per fitted (or set) weights
            single = [weight for term, weight in self.weights_.items() if isinstance(term, str)]
            self._typical, self._typical_of = float(np.median(single)) if single else 0.0, self.weights_
        return self._typical

    def digest(self) -> str:
        payload = repr(sorted((str(k), round(v, 6)) for k, v in self.weights_.items()))
        return hashlib.sha1((payload + self.anchor_ + repr(self.position_weights_.round(6))).encode()).hexdigest()


def known_words(catalog: pd.DataFrame, level: int) -> WordConcentration:
    """What the catalog's known categories (down to `level`, and known leaves) say about its title words."""
    return WordConcentration().fit(catalog["title"].fillna("").tolist(), known_labels(catalog, level))

"""Merchandising rules compiled into arrays the scorer applies (pure numpy).

Staff write rules (exclude, boost, bury, pin, diversity cap) against catalog
facts: a category, a tag, a price threshold, stock, explicit items, newness.
:func:`rules_compile` turns the rules that apply to one list into
:class:`CompiledRules`, once per catalog version and rule change, so that
scoring a user costs at most two vectorised passes more:

* an exclusion mask, shape (n_items,), set to ``-inf`` before the top-K, so
  an excluded item frees its slot for the next best one and lists stay full
  (dropping rows after the top-K would leave them short);
* a multiplicative factor, shape (n_items,): boosts (> 1) and buries (< 1);
* pins, ``(row, position)``: an eligible item shown at a fixed rank;
* a diversity cap: at most ``N`` items of one category in the list, applied
  while the top-K is selected, so the list stays ``k`` long.

No Django imports: the service layer reads the rule rows and the catalog
and calls this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from recommender.engine.similarity import top_k

__all__ = [
    "PROMOTED",
    "RULE_KINDS",
    "RULE_TARGETS",
    "CompiledRules",
    "RuleCatalog",
    "RuleSpec",
    "Selection",
    "promoted_reasons",
    "rules_compile",
]

#: Rule kind -> label for staff, in the order the admin lists them.
RULE_KINDS: dict[str, str] = {
    "exclude": "Exclude",
    "boost": "Boost",
    "bury": "Bury",
    "pin": "Pin at a position",
    "cap": "Diversity cap (at most N per category)",
}

#: Rule target -> label: which items a rule is about.
RULE_TARGETS: dict[str, str] = {
    "all": "Every item",
    "category": "A category",
    "tag": "A tag",
    "price_over": "Price over",
    "price_under": "Price under",
    "out_of_stock": "Out of stock",
    "items": "Chosen items",
    "new": "New items",
}

_SECS_PER_DAY = 86400.0

#: The reason an item placed by a rule (a pin, a boost) gives first.
PROMOTED = "Promoted"

# Which targets make sense for each kind; the model's validation reads this.
KIND_TARGETS: dict[str, frozenset[str]] = {
    "exclude": frozenset(RULE_TARGETS) - {"all"},
    "boost": frozenset(
        {"category", "tag", "price_over", "price_under", "items", "new"}
    ),
    "bury": frozenset(RULE_TARGETS) - {"all"},
    "pin": frozenset({"items"}),
    "cap": frozenset({"all"}),
}


@dataclass(frozen=True)
class RuleSpec:
    """One rule as the engine sees it.

    Attributes
    ----------
    kind : str
        One of :data:`RULE_KINDS`.
    target : str
        One of :data:`RULE_TARGETS` (allowed ones per kind: ``KIND_TARGETS``).
    category : str
        Category name, for target ``category``.
    tag : str
        Tag (compared case-insensitively), for target ``tag``.
    price : float
        Threshold, for targets ``price_over`` (price > it) and
        ``price_under`` (price < it).
    item_ids : tuple of int
        For target ``items``; a pin shows them from ``position`` on, in order.
    new_within_days : float
        For target ``new``: items created less than this many days ago.
    factor : float
        Score multiplier of ``boost`` (> 1) and ``bury`` (< 1).
    position : int
        Rank of a pinned item, 1 = first.
    cap : int
        Most items of one category in the list, for kind ``cap``.
    priority : int
        Larger first: which pin gets a contested position.
    """

    kind: str
    target: str = "all"
    category: str = ""
    tag: str = ""
    price: float = 0.0
    item_ids: tuple[int, ...] = ()
    new_within_days: float = 30.0
    factor: float = 1.0
    position: int = 1
    cap: int = 0
    priority: int = 0

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"unknown rule kind {self.kind!r}")
        if self.target not in KIND_TARGETS[self.kind]:
            raise ValueError(f"a {self.kind} rule cannot target {self.target!r}")
        if self.kind == "boost" and not self.factor > 1.0:
            raise ValueError(f"a boost needs a factor above 1, got {self.factor}")
        if self.kind == "bury" and not 0.0 < self.factor < 1.0:
            raise ValueError(f"a bury needs a factor in (0, 1), got {self.factor}")
        if self.kind == "pin" and self.position < 1:
            raise ValueError(f"a pin position starts at 1, got {self.position}")
        if self.kind == "cap" and self.cap < 1:
            raise ValueError(f"a diversity cap needs N >= 1, got {self.cap}")
        if self.target == "category" and not self.category:
            raise ValueError("a category rule names its category")
        if self.target == "tag" and not self.tag.strip():
            raise ValueError("a tag rule names its tag")
        if self.target == "items" and not self.item_ids:
            raise ValueError("an items rule names at least one item")
        if self.target in ("price_over", "price_under") and not math.isfinite(
            self.price
        ):
            raise ValueError(f"price threshold must be finite, got {self.price}")


@dataclass(frozen=True)
class RuleCatalog:
    """The catalog facts rules match on, one row per engine row.

    Build it with :meth:`build` once per catalog version.

    Attributes
    ----------
    ids : ndarray of shape (n_items,), int64
        Item id of each row.
    category : ndarray of shape (n_items,), int32
        Index into ``category_names``, -1 for none.
    category_names : list of str
    tag_rows : ndarray of shape (n_cells,), int64
        Row of each (item, tag) cell.
    tag_codes : ndarray of shape (n_cells,), int32
        Tag of each cell, as its position in ``tag_vocabulary``.
    tag_vocabulary : list of str
        Every lower-cased tag (a list that only grows: edits append to it).
    price : ndarray of shape (n_items,), float32
    stock : ndarray of shape (n_items,), int64
        Units in stock, -1 where stock is not tracked (never out of stock).
    created : ndarray of shape (n_items,), float64
        Epoch seconds, NaN when unknown (never new).
    """

    ids: NDArray[np.int64]
    category: NDArray[np.int32]
    category_names: list[str]
    tag_rows: NDArray[np.int64]
    tag_codes: NDArray[np.int32]
    tag_vocabulary: list[str]
    price: NDArray[np.float32]
    stock: NDArray[np.int64]
    created: NDArray[np.float64]
    _row_of_sorted: tuple[NDArray[np.int64], NDArray[np.int64]] = field(
        init=False, repr=False, compare=False
    )
    _code_of: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.ids.shape[0]
        for name in ("category", "price", "stock", "created"):
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"RuleCatalog.{name} has shape {getattr(self, name).shape}, "
                    f"expected ({n},)"
                )
        if self.tag_rows.shape != self.tag_codes.shape:
            raise ValueError("RuleCatalog.tag_rows and tag_codes differ in length")
        order = np.argsort(self.ids, kind="stable")
        object.__setattr__(self, "_row_of_sorted", (self.ids[order], order))
        code_of = {tag: code for code, tag in enumerate(self.tag_vocabulary)}
        object.__setattr__(self, "_code_of", code_of)

    @classmethod
    def build(
        cls,
        *,
        ids: NDArray[np.int64],
        category: NDArray[np.int32],
        category_names: Sequence[str],
        tags: Sequence[Sequence[str]],
        price: NDArray[np.float32],
        stock: NDArray[np.int64] | None,
        created: NDArray[np.float64],
    ) -> RuleCatalog:
        """Return the rule view of catalog columns (tags as lists per row).

        ``stock`` None means no item tracks stock.
        """
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.shape[0]
        lengths = np.fromiter((len(t) for t in tags), dtype=np.int64, count=n)
        flat = [str(tag).strip().lower() for row in tags for tag in row]
        vocabulary, codes = np.unique(
            np.asarray(flat, dtype=np.str_), return_inverse=True
        )
        return cls(
            ids=ids,
            category=np.asarray(category, dtype=np.int32),
            category_names=list(category_names),
            tag_rows=np.repeat(np.arange(n, dtype=np.int64), lengths),
            tag_codes=codes.astype(np.int32).ravel(),
            tag_vocabulary=vocabulary.tolist(),
            price=np.asarray(price, dtype=np.float32),
            stock=(
                np.full(n, -1, dtype=np.int64)
                if stock is None
                else np.asarray(stock, dtype=np.int64)
            ),
            created=np.asarray(created, dtype=np.float64),
        )

    @property
    def n_items(self) -> int:
        return int(self.ids.shape[0])

    def with_rows(self, rows: NDArray[np.int64], part: RuleCatalog) -> RuleCatalog:
        """Return this view with ``rows`` replaced by ``part``'s rows, in order.

        The rule side of an in-place catalog edit: rows past the end are
        appended (the engine appends new items), every other row is kept.

        Parameters
        ----------
        rows : ndarray of shape (m,), int64
            Distinct rows; those past the end must fill it without gaps.
        part : RuleCatalog
            ``m`` rows; its ``category_names`` is the whole current list.
        """
        n = max(self.n_items, int(rows.max()) + 1 if rows.size else 0)

        def column(old: NDArray, fresh: NDArray) -> NDArray:
            out = np.empty(n, dtype=old.dtype)
            out[: self.n_items] = old
            out[rows] = fresh
            return out

        keep = ~np.isin(self.tag_rows, rows)
        vocabulary = list(self.tag_vocabulary)
        code_of = dict(self._code_of)
        for tag in part.tag_vocabulary:
            if tag not in code_of:
                code_of[tag] = len(vocabulary)
                vocabulary.append(tag)
        recode = np.fromiter(
            (code_of[tag] for tag in part.tag_vocabulary),
            dtype=np.int32,
            count=len(part.tag_vocabulary),
        )
        return RuleCatalog(
            ids=column(self.ids, part.ids),
            category=column(self.category, part.category),
            category_names=list(part.category_names),
            tag_rows=np.concatenate([self.tag_rows[keep], rows[part.tag_rows]]),
            tag_codes=np.concatenate([self.tag_codes[keep], recode[part.tag_codes]]),
            tag_vocabulary=vocabulary,
            price=column(self.price, part.price),
            stock=column(self.stock, part.stock),
            created=column(self.created, part.created),
        )

    def rows_of(self, item_ids: Sequence[int]) -> NDArray[np.int64]:
        """Return the rows of ``item_ids`` in order, -1 for ids not in the catalog."""
        sorted_ids, order = self._row_of_sorted
        wanted = np.asarray(item_ids, dtype=np.int64)
        if not sorted_ids.size:
            return np.full(wanted.shape, -1, dtype=np.int64)
        slot = np.minimum(np.searchsorted(sorted_ids, wanted), sorted_ids.size - 1)
        return np.where(sorted_ids[slot] == wanted, order[slot], -1)

    def matches(self, rule: RuleSpec, *, now: float) -> NDArray[np.bool_]:
        """Return which rows ``rule``'s target selects: shape (n_items,), bool."""
        n = self.n_items
        target = rule.target
        if target == "all":
            return np.ones(n, dtype=bool)
        if target == "category":
            try:
                code = self.category_names.index(rule.category)
            except ValueError:
                return np.zeros(n, dtype=bool)
            return self.category == code
        if target == "tag":
            hit = np.zeros(n, dtype=bool)
            code = self._code_of.get(rule.tag.strip().lower())
            if code is not None:
                hit[self.tag_rows[self.tag_codes == code]] = True
            return hit
        if target == "price_over":
            return self.price > np.float32(rule.price)
        if target == "price_under":
            return self.price < np.float32(rule.price)
        if target == "out_of_stock":
            return self.stock == 0
        if target == "items":
            hit = np.zeros(n, dtype=bool)
            rows = self.rows_of(rule.item_ids)
            hit[rows[rows >= 0]] = True
            return hit
        if target == "new":
            with np.errstate(invalid="ignore"):
                return (self.created > now - rule.new_within_days * _SECS_PER_DAY) & (
                    self.created <= now
                )
        raise ValueError(f"unknown rule target {target!r}")


@dataclass(frozen=True)
class Selection:
    """The rows of one list, best first, and which of them a rule placed.

    Attributes
    ----------
    rows : ndarray of shape (k,), int64
    promoted : ndarray of shape (k,), bool
        True where a pin put the item there or a boost raised it.
    """

    rows: NDArray[np.int64]
    promoted: NDArray[np.bool_]


@dataclass(frozen=True)
class CompiledRules:
    """Rules for one list, as arrays over the catalog rows.

    Attributes
    ----------
    excluded : ndarray of shape (n_items,), bool
    factor : ndarray of shape (n_items,), float32
        Product of the boost and bury factors matching each row (1 if none).
    pins : tuple of (row, position)
        Highest priority first; position 1 = first.
    cap : int
        Most items of one category in a list, 0 for no cap.
    category : ndarray of shape (n_items,), int32
        Category index of each row (-1: none, never capped).
    has_exclusions, has_factors : bool
        Whether any row is excluded or has a factor other than 1.
    n_categories : int
        Number of category indices (``category`` is below it).
    """

    excluded: NDArray[np.bool_]
    factor: NDArray[np.float32]
    pins: tuple[tuple[int, int], ...]
    cap: int
    category: NDArray[np.int32]
    has_exclusions: bool = False
    has_factors: bool = False
    n_categories: int = 0

    @classmethod
    def none(cls, n_items: int, category: NDArray[np.int32]) -> CompiledRules:
        """Return rules that change nothing."""
        return cls(
            excluded=np.zeros(n_items, dtype=bool),
            factor=np.ones(n_items, dtype=np.float32),
            pins=(),
            cap=0,
            category=category,
        )

    @property
    def is_identity(self) -> bool:
        """Return True when applying and selecting equal a plain top-K."""
        return not (self.has_exclusions or self.has_factors or self.pins or self.cap)

    def apply(self, scores: NDArray[np.float32]) -> NDArray[np.float32]:
        """Exclude and boost/bury ``scores`` in place; return them.

        A factor multiplies a non-negative score and divides a negative one,
        so a boost always raises an item and a bury always lowers it whatever
        the sign of the blended score.

        Parameters
        ----------
        scores : ndarray of shape (n_items,), float32
            Blended scores, ``-inf`` where barred.
        """
        if scores.shape != self.excluded.shape:
            raise ValueError(
                f"scores have shape {scores.shape}, rules {self.excluded.shape}"
            )
        if self.has_factors:
            negative = scores < 0
            scores *= self.factor
            scores[negative] /= self.factor[negative] ** 2
        if self.has_exclusions:
            scores[self.excluded] = -np.inf
        return scores

    def select(self, scores: NDArray[np.float32], k: int) -> Selection:
        """Return the ``k`` best rows under the pins and the diversity cap.

        ``scores`` are already :meth:`apply`-ed. Pinned rows with a finite
        score (not excluded, not already seen) take their positions; the
        other slots go to the best remaining rows, skipping any row whose
        category already has ``cap`` items in the list (pins count, but are
        never dropped). The list is ``k`` long unless fewer rows are eligible.

        Parameters
        ----------
        scores : ndarray of shape (n_items,), float32
        k : int

        Returns
        -------
        Selection
        """
        if k < 0:
            raise ValueError(f"k must be non-negative, got {k}")
        if not self.pins and not self.cap:
            rows = top_k(scores, k)
            return Selection(rows, self._boosted(rows))
        pinned: list[tuple[int, int]] = []
        seen: set[int] = set()
        for row, position in self.pins:
            if row not in seen and np.isfinite(scores[row]) and len(pinned) < k:
                pinned.append((row, position))
                seen.add(row)
        pinned_rows = np.array([row for row, _ in pinned], dtype=np.int64)
        others = self._fill(scores, k - len(pinned), pinned_rows)
        size = len(pinned) + others.shape[0]
        slots: list[int | None] = [None] * size
        for row, position in pinned:
            at = min(position, size) - 1
            while slots[at] is not None:
                at = (at + 1) % size
            slots[at] = row
        rest = iter(others.tolist())
        rows = np.array(
            [row if row is not None else next(rest) for row in slots], dtype=np.int64
        )
        promoted = self._boosted(rows) | np.isin(rows, pinned_rows)
        return Selection(rows, promoted)

    def _boosted(self, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        if not self.has_factors:
            return np.zeros(rows.shape[0], dtype=bool)
        return self.factor[rows] > 1.0

    def _fill(
        self, scores: NDArray[np.float32], slots: int, pinned: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """Return up to ``slots`` best rows besides ``pinned``, under the cap."""
        if slots <= 0:
            return np.empty(0, dtype=np.int64)
        n_finite = None
        want = slots + pinned.shape[0]
        if self.cap:
            want = max(want, 4 * slots)
            taken = np.bincount(
                self.category[pinned][self.category[pinned] >= 0],
                minlength=self.n_categories,
            )
        while True:
            candidates = top_k(scores, want)
            candidates = candidates[~np.isin(candidates, pinned)]
            if self.cap:
                cats = self.category[candidates]
                # Rank of each candidate within its category, in score order:
                # a row is kept while its category still has room.
                order = np.argsort(cats, kind="stable")
                sorted_cats = cats[order]
                starts = np.flatnonzero(
                    np.concatenate([[True], sorted_cats[1:] != sorted_cats[:-1]])
                )
                group_start = np.repeat(starts, np.diff(np.append(starts, cats.size)))
                rank = np.empty(cats.size, dtype=np.int64)
                rank[order] = np.arange(cats.size) - group_start
                room = self.cap - taken[np.maximum(cats, 0)]
                candidates = candidates[(cats < 0) | (rank < room)]
            if candidates.shape[0] >= slots:
                return candidates[:slots]
            if n_finite is None:
                n_finite = int(np.isfinite(scores).sum())
            if want >= n_finite:
                return candidates
            want = min(2 * want, n_finite)


def rules_compile(
    rules: Sequence[RuleSpec], catalog: RuleCatalog, *, now: float
) -> CompiledRules:
    """Return ``rules`` as arrays over ``catalog``'s rows.

    Factors of several matching boosts and buries multiply; pins are ordered
    by priority (then by the order given); the strictest cap wins.

    Parameters
    ----------
    rules : sequence of RuleSpec
        The rules that apply to one list (placement, variant), any order.
    catalog : RuleCatalog
    now : float
        Epoch seconds, for the ``new`` target.

    Returns
    -------
    CompiledRules
    """
    n = catalog.n_items
    excluded = np.zeros(n, dtype=bool)
    factor = np.ones(n, dtype=np.float32)
    pins: list[tuple[int, int, int, int, int]] = []
    cap = 0
    has_factors = False
    for order, rule in enumerate(rules):
        if rule.kind == "cap":
            cap = rule.cap if not cap else min(cap, rule.cap)
            continue
        if rule.kind == "pin":
            rows = catalog.rows_of(rule.item_ids)
            for offset, row in enumerate(rows.tolist()):
                if row >= 0:
                    pins.append(
                        (-rule.priority, order, offset, row, rule.position + offset)
                    )
            continue
        hit = catalog.matches(rule, now=now)
        if rule.kind == "exclude":
            excluded |= hit
        else:
            factor[hit] *= np.float32(rule.factor)
            has_factors = has_factors or bool(hit.any())
    pins.sort()
    return CompiledRules(
        excluded=excluded,
        factor=factor,
        pins=tuple((row, position) for *_, row, position in pins),
        cap=cap,
        category=catalog.category,
        has_exclusions=bool(excluded.any()),
        has_factors=has_factors,
        n_categories=len(catalog.category_names),
    )


def promoted_reasons(reasons: list[str]) -> list[str]:
    """Return an item's reasons led by "Promoted", keeping its strongest other one.

    Two reasons at most, like every list's items: the rule that placed the
    item, and why it would have been a candidate anyway.
    """
    return [PROMOTED, *[text for text in reasons if text != PROMOTED][:1]]

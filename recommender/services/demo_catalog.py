"""The demo shop's vocabulary and its catalog, generated as column arrays.

Pure (numpy and the standard library): the same ``seed`` and size give the
same catalog, row for row, so tests can check titles without a database.

Each department has six kinds of product ("nouns"), six adjectives that are
also its tags, and a median price. A title is ``Brand [Line] Adjective Noun``:
within a department the first 540 items use every (brand, adjective, noun)
once, then product lines ("Aria", "Nova 2", ...) extend the space, so titles
never repeat at any catalog size. Nouns are distinct across departments, so
two departments never share a title either.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Department:
    name: str
    median_price: float
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    #: Departments a shopper often visits next ("then a complement").
    complements: tuple[str, ...]


DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "Books",
        18,
        ("Novel", "Cookbook", "Atlas", "Biography", "Travel Guide", "Anthology"),
        ("bestseller", "hardcover", "paperback", "illustrated", "classic", "signed"),
        ("Movies", "Music"),
    ),
    Department(
        "Electronics",
        120,
        ("Headphones", "Speaker", "Charger", "Tablet", "Camera", "Keyboard"),
        ("wireless", "bluetooth", "compact", "noise-cancelling", "usb-c", "4k"),
        ("Music", "Movies"),
    ),
    Department(
        "Home & Kitchen",
        45,
        ("Kettle", "Skillet", "Blender", "Knife Set", "Table Lamp", "Towel Set"),
        ("stainless", "non-stick", "ceramic", "cotton", "dishwasher-safe", "modern"),
        ("Grocery", "Garden"),
    ),
    Department(
        "Sports",
        60,
        ("Running Shoes", "Yoga Mat", "Dumbbells", "Bike Helmet", "Racket", "Jersey"),
        ("lightweight", "breathable", "pro", "training", "waterproof", "grip"),
        ("Outdoors", "Fashion"),
    ),
    Department(
        "Toys",
        25,
        ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite", "Robot Kit"),
        ("educational", "family", "ages-3-plus", "wooden", "stem", "collectible"),
        ("Books", "Movies"),
    ),
    Department(
        "Beauty",
        22,
        ("Serum", "Lipstick", "Shampoo", "Face Mask", "Perfume", "Lotion"),
        ("vegan", "organic", "fragrance-free", "hydrating", "spf", "travel-size"),
        ("Fashion",),
    ),
    Department(
        "Garden",
        35,
        ("Planter", "Hose", "Pruner", "Seed Kit", "Bird Feeder", "Lantern"),
        ("outdoor", "weatherproof", "solar", "heirloom", "terracotta", "ergonomic"),
        ("Home & Kitchen", "Outdoors"),
    ),
    Department(
        "Music",
        30,
        (
            "Vinyl Record",
            "Guitar Strings",
            "Ukulele",
            "Metronome",
            "Songbook",
            "Drum Pad",
        ),
        ("jazz", "acoustic", "limited-edition", "beginner", "remastered", "studio"),
        ("Electronics", "Books"),
    ),
    Department(
        "Movies",
        15,
        (
            "Blu-ray",
            "Box Set",
            "Documentary",
            "Director's Cut",
            "Anime Series",
            "Classic Film",
        ),
        ("drama", "comedy", "sci-fi", "thriller", "animated", "award-winning"),
        ("Books", "Electronics"),
    ),
    Department(
        "Grocery",
        8,
        ("Coffee Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Pasta", "Honey"),
        ("organic", "fair-trade", "single-origin", "gluten-free", "bulk", "gourmet"),
        ("Home & Kitchen",),
    ),
    Department(
        "Fashion",
        55,
        ("Jacket", "Sneakers", "Scarf", "Backpack", "Sunglasses", "Wallet"),
        ("leather", "denim", "slim-fit", "recycled", "unisex", "vintage"),
        ("Beauty", "Sports"),
    ),
    Department(
        "Outdoors",
        80,
        ("Tent", "Sleeping Bag", "Headlamp", "Water Filter", "Hiking Poles", "Cooler"),
        ("ultralight", "4-season", "rechargeable", "insulated", "packable", "rugged"),
        ("Sports", "Garden"),
    ),
)
DEPARTMENT_NAMES: tuple[str, ...] = tuple(d.name for d in DEPARTMENTS)
BRANDS: tuple[str, ...] = (
    "Northwind", "Acme", "Bluebird", "Cedar & Co", "Helio", "Kestrel", "Lumen",
    "Maple", "Orbit", "Pioneer", "Quill", "Summit", "Tandem", "Vela", "Zephyr",
)  # fmt: skip
#: Product lines that extend a department's titles past 540 items.
LINES: tuple[str, ...] = (
    "Aria", "Nova", "Terra", "Arden", "Echo", "Flux", "Halo", "Ion", "Juno",
    "Kora", "Luna", "Mira", "Nimbus", "Opal", "Prism", "Rhea", "Sol", "Tide",
    "Vista", "Zen",
)  # fmt: skip
_N_NOUNS = 6
_N_ADJECTIVES = 6
_BASE = len(BRANDS) * _N_ADJECTIVES * _N_NOUNS  # 540 titles per department
#: How an adjective reads inside a title where plain title case would not do.
_TITLE_WORDS = {
    "usb-c": "USB-C",
    "4k": "4K",
    "spf": "SPF",
    "stem": "STEM",
    "ages-3-plus": "Ages 3+",
    "sci-fi": "Sci-Fi",
    "non-stick": "Non-Stick",
    "4-season": "4-Season",
}
# A multiplier coprime with _BASE walks every (brand, adjective, noun) once in
# an order that varies all three from one item to the next.
_STRIDE = 263


@dataclass(frozen=True)
class DemoCatalog:
    """The demo catalog as column arrays, row ``i`` being ``demo:{i + 1}``.

    Attributes
    ----------
    department : ndarray of shape (n_items,), int64
        Index into ``DEPARTMENTS``.
    noun : ndarray of shape (n_items,), int64
        Index into the department's ``nouns``.
    titles, descriptions, tags : list of str, length n_items
    price : ndarray of shape (n_items,), float64, dollars rounded to cents
    rating : ndarray of shape (n_items,), float64, 1.0 to 5.0, one decimal
    age_days : ndarray of shape (n_items,), float64, days since it was added
    """

    department: NDArray[np.int64]
    noun: NDArray[np.int64]
    titles: list[str]
    descriptions: list[str]
    tags: list[str]
    price: NDArray[np.float64]
    rating: NDArray[np.float64]
    age_days: NDArray[np.float64]


def _rank_within(groups: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return each row's 0-based rank among the rows of its group, in row order."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - run_start
    return ranks


def _line(series: int) -> str:
    if series == 0:
        return ""
    line = LINES[(series - 1) % len(LINES)]
    generation = (series - 1) // len(LINES)
    return f"{line} " if generation == 0 else f"{line} {generation + 1} "


def demo_catalog(*, n_items: int, rng: np.random.Generator) -> DemoCatalog:
    """Return ``n_items`` demo items; the same generator state gives the same items."""
    department = rng.integers(0, len(DEPARTMENTS), size=n_items).astype(np.int64)
    price_noise = rng.lognormal(0.0, 0.45, size=n_items)
    rating = np.round(np.clip(rng.normal(4.1, 0.55, size=n_items), 1.0, 5.0), 1)
    age_days = rng.exponential(120.0, size=n_items)
    extra_tags = rng.integers(0, _N_ADJECTIVES - 1, size=(n_items, 2))

    rank = _rank_within(department)
    # A per-department offset, so departments do not all open with one brand.
    combo = (rank % _BASE + department * 97) % _BASE * _STRIDE % _BASE
    series = rank // _BASE
    noun = combo % _N_NOUNS
    adjective = (combo // _N_NOUNS) % _N_ADJECTIVES
    brand = combo // (_N_NOUNS * _N_ADJECTIVES)
    median = np.array([d.median_price for d in DEPARTMENTS])[department]
    price = np.round(np.maximum(median * price_noise, 0.5), 2)
    # The title's adjective leads the tags, then up to two more of the
    # department's (distinct from it, in the department's order).
    extra = (adjective[:, None] + 1 + extra_tags) % _N_ADJECTIVES
    tag_key = (adjective * _N_ADJECTIVES + extra[:, 0]) * _N_ADJECTIVES + extra[:, 1]

    # Strings are assembled from small precomputed tables: a Python loop over
    # plain ints and lists, no per-item numpy scalars (a million items ≈ 1 s).
    lines = [_line(s) for s in range(int(series.max(initial=0)) + 1)]
    tag_text: list[list[str]] = []
    described: list[list[str]] = []
    for dept in DEPARTMENTS:
        texts, prose = [], []
        for key in range(_N_ADJECTIVES**3):
            adj, first, second = (
                key // _N_ADJECTIVES**2,
                key // _N_ADJECTIVES % _N_ADJECTIVES,
                key % _N_ADJECTIVES,
            )
            words = [dept.adjectives[adj]] + [
                dept.adjectives[k] for k in sorted({first, second} - {adj})
            ]
            texts.append(", ".join(words))
            article = "An" if words[0][0] in "aeiou" else "A"
            prose.append(f"{article} {', '.join(words)} ")
        tag_text.append(texts)
        described.append(prose)
    labels = [
        [_TITLE_WORDS.get(a) or a.replace("-", " ").title() for a in d.adjectives]
        for d in DEPARTMENTS
    ]
    titles: list[str] = []
    descriptions: list[str] = []
    tags: list[str] = []
    for d, n, a, b, s, t in zip(
        department.tolist(),
        noun.tolist(),
        adjective.tolist(),
        brand.tolist(),
        series.tolist(),
        tag_key.tolist(),
        strict=True,
    ):
        noun_name = DEPARTMENTS[d].nouns[n]
        maker = BRANDS[b]
        titles.append(f"{maker} {lines[s]}{labels[d][a]} {noun_name}")
        descriptions.append(f"{described[d][t]}{noun_name.lower()} by {maker}.")
        tags.append(tag_text[d][t])
    return DemoCatalog(
        department=department,
        noun=noun.astype(np.int64),
        titles=titles,
        descriptions=descriptions,
        tags=tags,
        price=price,
        rating=rating,
        age_days=age_days,
    )

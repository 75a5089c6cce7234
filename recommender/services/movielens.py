"""Read the two MovieLens formats and turn them into engine inputs.

Formats
-------
* 100K (``u.data``, ``u.item``, ``u.user``, optional ``u.genre``):
  ``u.data`` is tab-separated ``user item rating timestamp``; ``u.item`` is
  latin-1, pipe-separated ``id|title|release date|video date|url|19 flags``.
* CSV (``ratings.csv``, ``movies.csv``, optional ``tags.csv``): UTF-8 with a
  header, CRLF or LF line ends, genres ``|``-separated.

Rating -> action (documented in docs/evaluation.md)
---------------------------------------------------
A rating is an explicit signal of how much someone valued something they
watched; the product's actions are implicit signals of increasing strength.
Every rating, even a low one, means the person chose to watch the movie, so it
maps to a positive action; a higher rating maps to a stronger one:

==============  ==========  ==============================
stars           action      weight (``ACTION_WEIGHTS``)
==============  ==========  ==============================
0.5 - 1.5       view        1.0
2.0 - 2.5       click       1.5
3.0 - 3.5       like        2.5
4.0 - 4.5       cart        3.0
5.0             purchase    4.0
==============  ==========  ==============================
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from recommender.engine import ACTION_WEIGHTS, Catalog

__all__ = [
    "GENRES_100K",
    "MovieLens",
    "movielens_catalog",
    "movielens_read",
    "rating_actions",
    "rating_weights",
    "title_year",
]

#: Genre order of the 19 flags in ``u.item`` when no ``u.genre`` file exists.
GENRES_100K = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]

#: Genre labels that mean "no genre" and are dropped.
_NO_GENRE = {"unknown", "(no genres listed)"}

#: Lower star bound of each action, strongest last (see the module docstring).
_ACTION_THRESHOLDS: list[tuple[float, str]] = [
    (0.0, "view"),
    (2.0, "click"),
    (3.0, "like"),
    (4.0, "cart"),
    (5.0, "purchase"),
]

_YEAR_RE = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")

#: How many user tags per movie become item tags (most frequent first).
MAX_USER_TAGS = 10


@dataclass(frozen=True)
class MovieLens:
    """A parsed MovieLens directory; arrays are parallel within each group.

    Attributes
    ----------
    movie_ids : ndarray of shape (n_movies,), int64
    titles : list of str, length n_movies
    genres : list of list of str, length n_movies
    years : ndarray of shape (n_movies,), float32
        Release year from the title (NaN when absent).
    released : ndarray of shape (n_movies,), float64
        Release date in epoch seconds (100K ``u.item``; else 1 January of
        the year; NaN when unknown).
    user_ids, item_ids : ndarray of shape (n_ratings,), int64
    ratings : ndarray of shape (n_ratings,), float32
        Stars, 0.5 to 5.
    timestamps : ndarray of shape (n_ratings,), float64
        Epoch seconds.
    tag_user_ids, tag_item_ids : ndarray of shape (n_tags,), int64
    tag_texts : list of str, length n_tags
        Lower-cased, stripped tag texts.
    tag_timestamps : ndarray of shape (n_tags,), float64
    users : ndarray of shape (n_users,), int64
        Every user id (``u.user`` when present, else those who rated).
    format : str
        ``"100k"`` or ``"csv"``.
    """

    movie_ids: NDArray[np.int64]
    titles: list[str]
    genres: list[list[str]]
    years: NDArray[np.float32]
    released: NDArray[np.float64]
    user_ids: NDArray[np.int64]
    item_ids: NDArray[np.int64]
    ratings: NDArray[np.float32]
    timestamps: NDArray[np.float64]
    tag_user_ids: NDArray[np.int64]
    tag_item_ids: NDArray[np.int64]
    tag_texts: list[str]
    tag_timestamps: NDArray[np.float64]
    users: NDArray[np.int64]
    format: str


def title_year(title: str) -> float:
    """Return the year in a MovieLens title such as ``"Heat (1995)"``, else NaN."""
    match = _YEAR_RE.search(title.strip())
    return float(match.group(1)) if match else float("nan")


def _clean_title(title: str) -> str:
    return " ".join(title.split())


def _year_start(year: float) -> float:
    if not np.isfinite(year):
        return float("nan")
    return dt.datetime(int(year), 1, 1, tzinfo=dt.UTC).timestamp()


def rating_actions(ratings: NDArray[np.float32]) -> list[str]:
    """Return the action each star rating maps to (see the module docstring).

    Parameters
    ----------
    ratings : ndarray of shape (n,), float32

    Returns
    -------
    list of str, length n
    """
    bounds = np.array([t for t, _ in _ACTION_THRESHOLDS], dtype=np.float32)
    names = np.array([a for _, a in _ACTION_THRESHOLDS])
    idx = (
        np.searchsorted(bounds, np.asarray(ratings, dtype=np.float32), side="right") - 1
    )
    return names[np.clip(idx, 0, len(names) - 1)].tolist()


def rating_weights(ratings: NDArray[np.float32]) -> NDArray[np.float32]:
    """Return ``ACTION_WEIGHTS`` of the action each rating maps to.

    Parameters
    ----------
    ratings : ndarray of shape (n,), float32

    Returns
    -------
    ndarray of shape (n,), float32
    """
    bounds = np.array([t for t, _ in _ACTION_THRESHOLDS], dtype=np.float32)
    weights = np.array(
        [ACTION_WEIGHTS[a] for _, a in _ACTION_THRESHOLDS], dtype=np.float32
    )
    idx = (
        np.searchsorted(bounds, np.asarray(ratings, dtype=np.float32), side="right") - 1
    )
    return weights[np.clip(idx, 0, len(weights) - 1)]


def _read_numeric(path: Path, *, delimiter: str | None, skip_header: bool) -> NDArray:
    """Read a numeric table fast (CRLF-safe), as float64 columns."""
    text = path.read_text(encoding="latin-1")
    lines = text.splitlines()
    if skip_header:
        lines = lines[1:]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return np.empty((0, 4), dtype=np.float64)
    sep = "," if delimiter is None else delimiter
    joined = sep.join(lines)
    flat = np.array(joined.replace("\t", ",").split(","), dtype=np.float64)
    return flat.reshape(len(lines), -1)


def _read_100k(directory: Path) -> MovieLens:
    data = _read_numeric(directory / "u.data", delimiter="\t", skip_header=False)
    genre_names = list(GENRES_100K)
    genre_file = directory / "u.genre"
    if genre_file.exists():
        pairs = [
            line.split("|")
            for line in genre_file.read_text(encoding="latin-1").splitlines()
            if line.strip()
        ]
        by_index = {int(idx): name for name, idx in pairs}
        genre_names = [by_index[i] for i in sorted(by_index)]
    ids, titles, genres, years, released = [], [], [], [], []
    for line in (directory / "u.item").read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        flags = fields[-len(genre_names) :]
        ids.append(int(fields[0]))
        titles.append(_clean_title(fields[1]))
        genres.append(
            [
                g
                for g, f in zip(genre_names, flags, strict=True)
                if f == "1" and g not in _NO_GENRE
            ]
        )
        year = title_year(fields[1])
        date = fields[2].strip()
        if date:
            stamp = dt.datetime.strptime(date, "%d-%b-%Y").replace(tzinfo=dt.UTC)
            released.append(stamp.timestamp())
            if not np.isfinite(year):
                year = float(stamp.year)
        else:
            released.append(_year_start(year))
        years.append(year)
    users_file = directory / "u.user"
    if users_file.exists():
        users = np.array(
            [
                int(line.split("|")[0])
                for line in users_file.read_text(encoding="latin-1").splitlines()
                if line.strip()
            ],
            dtype=np.int64,
        )
    else:
        users = np.unique(data[:, 0].astype(np.int64))
    return MovieLens(
        movie_ids=np.array(ids, dtype=np.int64),
        titles=titles,
        genres=genres,
        years=np.array(years, dtype=np.float32),
        released=np.array(released, dtype=np.float64),
        user_ids=data[:, 0].astype(np.int64),
        item_ids=data[:, 1].astype(np.int64),
        ratings=data[:, 2].astype(np.float32),
        timestamps=data[:, 3].astype(np.float64),
        tag_user_ids=np.empty(0, dtype=np.int64),
        tag_item_ids=np.empty(0, dtype=np.int64),
        tag_texts=[],
        tag_timestamps=np.empty(0, dtype=np.float64),
        users=users,
        format="100k",
    )


def _read_csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return [row for row in rows[1:] if row]


def _read_csv(directory: Path) -> MovieLens:
    data = _read_numeric(directory / "ratings.csv", delimiter=",", skip_header=True)
    ids, titles, genres, years = [], [], [], []
    for row in _read_csv_rows(directory / "movies.csv"):
        ids.append(int(row[0]))
        titles.append(_clean_title(row[1]))
        genres.append([g for g in row[2].split("|") if g and g not in _NO_GENRE])
        years.append(title_year(row[1]))
    tag_users, tag_items, tag_texts, tag_times = [], [], [], []
    tags_file = directory / "tags.csv"
    if tags_file.exists():
        for row in _read_csv_rows(tags_file):
            text = " ".join(row[2].lower().split())
            if text:
                tag_users.append(int(row[0]))
                tag_items.append(int(row[1]))
                tag_texts.append(text)
                tag_times.append(float(row[3]))
    user_ids = data[:, 0].astype(np.int64)
    return MovieLens(
        movie_ids=np.array(ids, dtype=np.int64),
        titles=titles,
        genres=genres,
        years=np.array(years, dtype=np.float32),
        released=np.array([_year_start(y) for y in years], dtype=np.float64),
        user_ids=user_ids,
        item_ids=data[:, 1].astype(np.int64),
        ratings=data[:, 2].astype(np.float32),
        timestamps=data[:, 3].astype(np.float64),
        tag_user_ids=np.array(tag_users, dtype=np.int64),
        tag_item_ids=np.array(tag_items, dtype=np.int64),
        tag_texts=tag_texts,
        tag_timestamps=np.array(tag_times, dtype=np.float64),
        users=np.unique(user_ids),
        format="csv",
    )


def movielens_read(directory: Path | str) -> MovieLens:
    """Return the MovieLens data in ``directory`` (100K or CSV format).

    Parameters
    ----------
    directory : path
        Holds ``u.data`` + ``u.item`` (100K) or ``ratings.csv`` + ``movies.csv``.

    Returns
    -------
    MovieLens

    Raises
    ------
    FileNotFoundError
        When neither format's files are present.
    """
    path = Path(directory)
    if (path / "u.data").exists() and (path / "u.item").exists():
        return _read_100k(path)
    if (path / "ratings.csv").exists() and (path / "movies.csv").exists():
        return _read_csv(path)
    raise FileNotFoundError(
        f"{path} holds neither u.data + u.item (MovieLens 100K) "
        "nor ratings.csv + movies.csv (MovieLens CSV)"
    )


def movie_tags(
    data: MovieLens, *, tag_mask: NDArray[np.bool_] | None = None
) -> list[list[str]]:
    """Return each movie's tags: its genres, then its most used user tags.

    Parameters
    ----------
    data : MovieLens
    tag_mask : ndarray of shape (n_tags,), bool, optional
        Which tag applications to use (all when omitted).

    Returns
    -------
    list of list of str, length n_movies
        Lower-case; genres first.
    """
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    keep = np.ones(len(data.tag_texts), dtype=bool) if tag_mask is None else tag_mask
    for item, text, ok in zip(
        data.tag_item_ids.tolist(), data.tag_texts, keep, strict=True
    ):
        if ok:
            counts[item][text] += 1
    out = []
    for movie, genres in zip(data.movie_ids.tolist(), data.genres, strict=True):
        tags = [g.lower() for g in genres]
        # most_common breaks ties by first insertion; sort for determinism.
        ranked = sorted(
            counts.get(movie, Counter()).items(), key=lambda kv: (-kv[1], kv[0])
        )
        tags += [t for t, _ in ranked[:MAX_USER_TAGS] if t not in tags]
        out.append(tags)
    return out


def movielens_catalog(
    data: MovieLens,
    *,
    rating_mask: NDArray[np.bool_] | None = None,
    tag_mask: NDArray[np.bool_] | None = None,
) -> Catalog:
    """Return the engine catalog of a MovieLens data set.

    The category of a movie is its first listed genre (all genres are also
    tags); the rating is the mean of the ratings selected by ``rating_mask``
    (so an evaluation can use training ratings only); price is 0; the
    creation time is the release date when known.

    Parameters
    ----------
    data : MovieLens
    rating_mask : ndarray of shape (n_ratings,), bool, optional
    tag_mask : ndarray of shape (n_tags,), bool, optional

    Returns
    -------
    Catalog
    """
    genre_names = sorted({g for gs in data.genres for g in gs})
    genre_index = {g: i for i, g in enumerate(genre_names)}
    category = np.array(
        [genre_index[gs[0]] if gs else -1 for gs in data.genres], dtype=np.int32
    )
    mask = (
        np.ones(data.ratings.shape[0], dtype=bool)
        if rating_mask is None
        else rating_mask
    )
    order = np.argsort(data.movie_ids)
    pos = np.searchsorted(data.movie_ids[order], data.item_ids[mask])
    pos = np.clip(pos, 0, max(0, order.size - 1))
    rows = order[pos] if order.size else pos
    known = (
        data.movie_ids[rows] == data.item_ids[mask] if order.size else pos.astype(bool)
    )
    n = data.movie_ids.shape[0]
    sums = np.bincount(rows[known], weights=data.ratings[mask][known], minlength=n)
    cnts = np.bincount(rows[known], minlength=n)
    mean = np.where(cnts > 0, sums / np.maximum(cnts, 1), 0.0).astype(np.float32)
    return Catalog(
        ids=data.movie_ids.astype(np.int64),
        titles=list(data.titles),
        category=category,
        category_names=genre_names,
        tags=movie_tags(data, tag_mask=tag_mask),
        price=np.zeros(n, dtype=np.float32),
        rating=mean,
        year=data.years.astype(np.float32),
        active=np.ones(n, dtype=np.bool_),
        created=data.released.astype(np.float64),
    )

"""Both MovieLens formats, on tiny files generated in tmp_path."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from recommender.services.engine import ACTION_WEIGHTS
from recommender.services.movielens import (
    GENRES_100K,
    movielens_catalog,
    movielens_read,
    rating_actions,
    rating_weights,
    title_year,
)


def flags(*names):
    return "|".join("1" if g in names else "0" for g in GENRES_100K)


def write_100k(path):
    path.mkdir()
    (path / "u.item").write_bytes(
        "\n".join(
            [
                "1|Caf\xe9 Story (1995)|01-Jan-1995||http://x|"
                + flags("Comedy", "Drama"),
                f"2|Big Fight (1996)|15-Mar-1996||http://x|{flags('Action')}",
                f"3|No Date|||http://x|{flags('unknown')}",
            ]
        ).encode("latin-1")
        + b"\n"
    )
    (path / "u.data").write_text(
        "1\t1\t5\t881250949\n1\t2\t3\t881250950\n"
        "2\t1\t1\t881250951\n2\t3\t4\t881250952\n"
    )
    (path / "u.user").write_text(
        "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
    )


def write_csv(path):
    path.mkdir()
    (path / "movies.csv").write_bytes(
        b"movieId,title,genres\r\n"
        b'10,"Heat, The (1995)",Action|Crime\r\n'
        b"20,Sequel (2006-2007),Comedy\r\n"
        b"30,Untitled,(no genres listed)\r\n"
    )
    (path / "ratings.csv").write_bytes(
        b"userId,movieId,rating,timestamp\r\n"
        b"7,10,4.5,1000000000\r\n7,20,0.5,1000000100\r\n8,20,5.0,1000000200\r\n"
    )
    (path / "tags.csv").write_bytes(
        b"userId,movieId,tag,timestamp\r\n"
        b"7,10,Heist,1000000001\r\n8,10,heist,1000000300\r\n"
        b"8,10,  Slow   burn ,1000000301\r\n"
    )


def test_title_year():
    assert title_year("Heat (1995)") == 1995
    assert title_year("Sequel (2006-2007)") == 2006
    assert title_year("Heat (1995) ") == 1995
    assert np.isnan(title_year("Untitled"))


def test_rating_mapping_is_monotone_and_documented():
    stars = np.array([0.5, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0], np.float32)
    assert rating_actions(stars) == [
        "view",
        "view",
        "click",
        "click",
        "like",
        "like",
        "cart",
        "cart",
        "purchase",
    ]
    weights = rating_weights(stars)
    assert weights.tolist() == [ACTION_WEIGHTS[a] for a in rating_actions(stars)]
    assert np.all(np.diff(weights) >= 0)


def test_read_100k(tmp_path):
    write_100k(tmp_path / "ml-100k")
    data = movielens_read(tmp_path / "ml-100k")
    assert data.format == "100k"
    assert data.movie_ids.tolist() == [1, 2, 3]
    assert data.titles[0] == "Caf\xe9 Story (1995)"
    assert data.genres == [["Comedy", "Drama"], ["Action"], []]
    assert data.years[:2].tolist() == [1995, 1996]
    assert np.isnan(data.years[2])
    assert data.released[1] == pytest.approx(826848000.0)  # 1996-03-15 UTC
    assert data.ratings.tolist() == [5, 3, 1, 4]
    assert data.users.tolist() == [1, 2, 3]  # u.user lists a user with no ratings


def test_read_csv_with_crlf_and_quotes(tmp_path):
    write_csv(tmp_path / "ml-csv")
    data = movielens_read(tmp_path / "ml-csv")
    assert data.format == "csv"
    assert data.titles == ["Heat, The (1995)", "Sequel (2006-2007)", "Untitled"]
    assert data.genres == [["Action", "Crime"], ["Comedy"], []]
    assert data.timestamps.tolist() == [1000000000, 1000000100, 1000000200]
    assert data.tag_texts == ["heist", "heist", "slow burn"]
    catalog = movielens_catalog(data)
    assert catalog.category_names == ["Action", "Comedy", "Crime"]
    assert catalog.category.tolist() == [0, 1, -1]
    assert catalog.tags[0] == ["action", "crime", "heist", "slow burn"]
    assert catalog.rating.tolist() == pytest.approx([4.5, 2.75, 0.0])
    # tags applied later than a cut-off can be left out
    early = movielens_catalog(data, tag_mask=data.tag_timestamps < 1000000300)
    assert early.tags[0] == ["action", "crime", "heist"]


def test_read_rejects_unknown_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        movielens_read(tmp_path)


@pytest.mark.django_db
@pytest.mark.parametrize("writer", [write_100k, write_csv])
def test_import_command_is_idempotent(tmp_path, writer, monkeypatch):
    from django.contrib.auth import get_user_model

    from recommender.models import BrowsingEvent, FittedModel, Item
    from recommender.services.engine import Behaviour
    from sync.models import Change

    directory = tmp_path / "data"
    writer(directory)
    data = movielens_read(directory)
    out = StringIO()
    call_command("import_movielens", str(directory), "--no-refit", stdout=out)
    assert "Imported" in out.getvalue()
    items = Item.objects.filter(external_id__startswith="ml:")
    assert items.count() == data.movie_ids.size
    assert Change.objects.filter(model="item").count() == data.movie_ids.size
    events = BrowsingEvent.objects.filter(client_id__startswith="ml:")
    assert events.count() == data.ratings.size
    first = events.order_by("created").first()
    assert first.created.timestamp() == data.timestamps.min()
    assert first.weight == ACTION_WEIGHTS[first.action]
    user = get_user_model().objects.get(username=f"ml{data.user_ids[0]}")
    assert not user.has_usable_password()
    counts = (items.count(), events.count(), Change.objects.count())
    out = StringIO()
    call_command("import_movielens", str(directory), stdout=out)
    assert "0 items, 0 users, 0 events" in out.getvalue()
    assert (items.count(), events.count(), Change.objects.count()) == counts
    # the rerun refitted the engine on the imported events
    model = FittedModel.objects.latest()
    assert model.n_events == data.ratings.size
    assert Behaviour.from_bytes(bytes(model.data)).n_events == data.ratings.size

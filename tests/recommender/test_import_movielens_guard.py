"""import_movielens keeps films out of another catalog unless asked."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from recommender.models import Category, Item
from tests.recommender.test_movielens import write_100k

pytestmark = pytest.mark.django_db


def shop_item() -> Item:
    category = Category.objects.create(name="Kitchen")
    return Item.objects.create(title="Lumen Skillet", category=category, price=39)


def test_refuses_a_catalog_with_other_items(tmp_path):
    write_100k(tmp_path / "data")
    shop_item()
    with pytest.raises(CommandError, match="--into-existing"):
        call_command(
            "import_movielens", str(tmp_path / "data"), "--no-refit", stdout=StringIO()
        )
    assert not Item.objects.filter(external_id__startswith="ml:").exists()
    assert list(Category.objects.values_list("name", flat=True)) == ["Kitchen"]


def test_into_existing_mixes_with_a_warning(tmp_path):
    write_100k(tmp_path / "data")
    shop_item()
    out, err = StringIO(), StringIO()
    call_command(
        "import_movielens",
        str(tmp_path / "data"),
        "--no-refit",
        "--into-existing",
        stdout=out,
        stderr=err,
    )
    assert "$0.00" in err.getvalue() and "genres" in err.getvalue()
    assert Item.objects.filter(external_id__startswith="ml:").exists()


def test_empty_catalog_and_reruns_import_without_a_word(tmp_path):
    write_100k(tmp_path / "data")
    for _ in range(2):
        err = StringIO()
        call_command(
            "import_movielens",
            str(tmp_path / "data"),
            "--no-refit",
            stdout=StringIO(),
            stderr=err,
        )
        assert err.getvalue() == ""
